"""Identifying the AVID, part and edition in the file names of real collections."""

import pytest

from pipeline.avid import parse
from pipeline.filenames import Identified, Unidentified, identify, is_video

# name, code, part, edition
NAMES = [
    # plain, case and separators
    ("ABC-123.mp4", "ABC-123", None, ""),
    ("abc-123.mp4", "ABC-123", None, ""),
    ("abc_123.mp4", "ABC-123", None, ""),
    ("abc 123.mkv", "ABC-123", None, ""),
    ("ABC123.mp4", "ABC-123", None, ""),
    ("abc123.avi", "ABC-123", None, ""),
    ("abc.123.mp4", "ABC-123", None, ""),
    ("ABC--123.mp4", "ABC-123", None, ""),
    ("SSIS-001.mp4", "SSIS-001", None, ""),
    ("ssis001.mp4", "SSIS-001", None, ""),
    ("HEYZO-1234.mp4", "HEYZO-1234", None, ""),
    ("heyzo_1234.wmv", "HEYZO-1234", None, ""),
    ("259LUXU-1234.mp4", "259LUXU-1234", None, ""),
    ("300mium-123.mp4", "300MIUM-123", None, ""),
    ("  ABC-123  .mp4", "ABC-123", None, ""),
    ("/media/old/ABC-123.mp4", "ABC-123", None, ""),
    ("C:\\Videos\\abc-123.mp4", "ABC-123", None, ""),
    ("dir with DEF-456/ABC-123.mp4", "ABC-123", None, ""),
    ("ABC-123", "ABC-123", None, ""),
    ("ABC-123.nfo", "ABC-123", None, ""),
    # site prefixes and suffixes
    ("[site.com]ABC-123.mp4", "ABC-123", None, ""),
    ("[javbus.com] ABC-123.mp4", "ABC-123", None, ""),
    ("【www.site.net】abc-123.mp4", "ABC-123", None, ""),
    ("abc-123@site.mp4", "ABC-123", None, ""),
    ("abc-123@site.com.mp4", "ABC-123", None, ""),
    ("site.com@ABC-123.mp4", "ABC-123", None, ""),
    ("hhd800.com@ABC-123.mp4", "ABC-123", None, ""),
    ("hhd800.com@abc00123.mp4", "ABC-123", None, ""),
    ("ABC-123_site.com.mkv", "ABC-123", None, ""),
    ("ABC-123 site.com.mkv", "ABC-123", None, ""),
    ("www.av01.tv ABC-123.mp4", "ABC-123", None, ""),
    ("(site.cc) ABC-123 (site.cc).mp4", "ABC-123", None, ""),
    ("javhd.xyz-ABC-123.mp4", "ABC-123", None, ""),
    ("4k2.com@ABC-123-C.mp4", "ABC-123", None, "C"),
    # DMM content ids
    ("abc00123.mp4", "ABC-123", None, ""),
    ("ABC00123.mp4", "ABC-123", None, ""),
    ("h_123abc00045.mp4", "ABC-045", None, ""),
    ("h_1234abc00045.mp4", "ABC-045", None, ""),
    ("1abc123.mp4", "ABC-123", None, ""),
    ("1abc00123.mp4", "ABC-123", None, ""),
    ("118abc00123.mp4", "ABC-123", None, ""),
    ("ssis00001hhb.mp4", "SSIS-001", None, ""),
    ("ssis00001hhb1.mp4", "SSIS-001", None, ""),
    ("abc00123_dmb_w.mp4", "ABC-123", None, ""),
    ("abc12345.mp4", "ABC-12345", None, ""),
    # FC2 variants
    ("FC2-PPV-1234567.mp4", "FC2-PPV-1234567", None, ""),
    ("fc2-ppv-1234567.mp4", "FC2-PPV-1234567", None, ""),
    ("fc2ppv_1234567.mp4", "FC2-PPV-1234567", None, ""),
    ("FC2PPV1234567.mp4", "FC2-PPV-1234567", None, ""),
    ("FC2-1234567.mp4", "FC2-PPV-1234567", None, ""),
    ("fc2 ppv 1234567.mp4", "FC2-PPV-1234567", None, ""),
    ("FC2_PPV_123456.mkv", "FC2-PPV-123456", None, ""),
    ("FC2-PPV-1234567-1.mp4", "FC2-PPV-1234567", 1, ""),
    ("FC2-PPV-1234567-2.mp4", "FC2-PPV-1234567", 2, ""),
    ("FC2-PPV-1234567_CD2.mp4", "FC2-PPV-1234567", 2, ""),
    ("[site.com]FC2-PPV-1234567.mp4", "FC2-PPV-1234567", None, ""),
    ("site.com@fc2-ppv-1234567.mp4", "FC2-PPV-1234567", None, ""),
    # multi-part
    ("ABC-123-CD1.mp4", "ABC-123", 1, ""),
    ("ABC-123-CD2.mp4", "ABC-123", 2, ""),
    ("abc-123-cd10.mp4", "ABC-123", 10, ""),
    ("ABC-123 cd1.mp4", "ABC-123", 1, ""),
    ("ABC-123CD2.mp4", "ABC-123", 2, ""),
    ("abc-123-A.mp4", "ABC-123", 1, ""),
    ("abc-123-B.mp4", "ABC-123", 2, ""),
    ("ABC-123_D.mp4", "ABC-123", 4, ""),
    ("ABC-123A.mp4", "ABC-123", 1, ""),
    ("abc-123 part1.mkv", "ABC-123", 1, ""),
    ("abc-123 part2.mkv", "ABC-123", 2, ""),
    ("abc-123.part2.mkv", "ABC-123", 2, ""),
    ("ABC-123_Part_3.mp4", "ABC-123", 3, ""),
    ("ABC-123pt2.mp4", "ABC-123", 2, ""),
    ("ABC-123 pt1.mp4", "ABC-123", 1, ""),
    ("ABC-123-disc2.mp4", "ABC-123", 2, ""),
    ("ABC-123-1.mp4", "ABC-123", 1, ""),
    ("ABC-123_2.mp4", "ABC-123", 2, ""),
    ("hhd800.com@ABC-123-CD2.mp4", "ABC-123", 2, ""),
    ("abc00123-cd1.mp4", "ABC-123", 1, ""),
    # editions
    ("ABC-123-C.mp4", "ABC-123", None, "C"),
    ("abc-123-c.mp4", "ABC-123", None, "C"),
    ("ABC-123C.mp4", "ABC-123", None, "C"),
    ("ABC-123_C.mp4", "ABC-123", None, "C"),
    ("ABC-123-UC.mp4", "ABC-123", None, "UC"),
    ("abc-123-uc.mkv", "ABC-123", None, "UC"),
    ("ABC-123-U.mp4", "ABC-123", None, "U"),
    ("abc-123ch.mp4", "ABC-123", None, "C"),
    ("abc-123-ch.mp4", "ABC-123", None, "C"),
    ("ABC-123 CH.mp4", "ABC-123", None, "C"),
    ("ABC-123-C-CD2.mp4", "ABC-123", 2, "C"),
    ("ABC-123-CD2-C.mp4", "ABC-123", 2, "C"),
    ("ABC-123-UC-A.mp4", "ABC-123", 1, "UC"),
    ("ABC-123C-1.mp4", "ABC-123", 1, "C"),
    ("[site.com]ABC-123-C.mp4", "ABC-123", None, "C"),
    ("abc00123-c.mp4", "ABC-123", None, "C"),
    ("ABC123C.mp4", "ABC-123", None, "C"),
    # resolutions, codecs, dates and other junk
    ("ABC-123 1080p.mp4", "ABC-123", None, ""),
    ("ABC-123.1080P.mkv", "ABC-123", None, ""),
    ("1080p.ABC-123.mkv", "ABC-123", None, ""),
    ("ABC-123 720p x264.mp4", "ABC-123", None, ""),
    ("ABC-123 [2160p][x265][HEVC].mkv", "ABC-123", None, ""),
    ("ABC-123 1080p x264 HD.mp4", "ABC-123", None, ""),
    ("ABC-123 FHD.mp4", "ABC-123", None, ""),
    ("ABC-123 H.264 AAC2.mp4", "ABC-123", None, ""),
    ("ABC-123 4K 60fps HEVC.mkv", "ABC-123", None, ""),
    ("ABC-123 10bit WEB-DL.mkv", "ABC-123", None, ""),
    ("ABC-123 2023-01-15.mp4", "ABC-123", None, ""),
    ("20230115_ABC-123.mp4", "ABC-123", None, ""),
    ("2023.01.15 ABC-123.mp4", "ABC-123", None, ""),
    ("[中文字幕]ABC-123.mp4", "ABC-123", None, ""),
    ("ABC-123 [中文字幕].mp4", "ABC-123", None, ""),
    ("【高清】ABC-123 美少女.mp4", "ABC-123", None, ""),
    ("ABC-123 タイトル 女優名.mp4", "ABC-123", None, ""),
    ("ABC-123 Some English Title.mp4", "ABC-123", None, ""),
    ("[HD] ABC-123 (1080p) [x264].mp4", "ABC-123", None, ""),
    ("ABC-123 HD 1080p CD1.mp4", "ABC-123", 1, ""),
    ("(ABC-123).mp4", "ABC-123", None, ""),
    ("ABC-123 [DVDRip].avi", "ABC-123", None, ""),
    ("ABC-123.mp4.mp4", "ABC-123", None, ""),
    ("x" * 300 + " ABC-123.mp4", "ABC-123", None, ""),
    ("a." * 200 + "com ABC-123.mp4", "ABC-123", None, ""),
    # the same code twice is one code
    ("ABC-123/ABC-123.mp4", "ABC-123", None, ""),
    ("[ABC-123] abc-123-C.mp4", "ABC-123", None, "C"),
    ("abc00123 ABC-123.mp4", "ABC-123", None, ""),
]

# name, words the reason must contain
UNIDENTIFIED = [
    ("holiday video.mp4", ["no product code", "ABC-123"]),
    ("movie.mkv", ["no product code"]),
    ("1080p.mp4", ["no product code"]),
    ("x264 1080p HEVC.mkv", ["no product code"]),
    ("IMG_2023.mp4", ["no product code"]),
    ("DSC01234.MOV", ["no product code"]),
    ("2023-01-15.mp4", ["no product code"]),
    ("中文字幕.mp4", ["no product code"]),
    ("site.com.mp4", ["no product code"]),
    ("hhd800.com.mp4", ["no product code"]),
    ("", ["no product code"]),
    (".mp4", ["no product code"]),
    ("ABC.mp4", ["no product code"]),
    ("12345.mp4", ["no product code"]),
    ("A-1.mp4", ["no product code"]),
    ("ABC-123 DEF-456.mp4", ["ambiguous", "ABC-123", "DEF-456"]),
    ("ABC-123 vs ABC-124.mp4", ["ambiguous", "ABC-123", "ABC-124"]),
    ("FC2-PPV-1234567 ABC-123.mp4", ["ambiguous", "FC2-PPV-1234567", "ABC-123"]),
    ("abc00123 def00456.mp4", ["ambiguous", "ABC-123", "DEF-456"]),
]


def test_the_table_is_large():
    assert len(NAMES) + len(UNIDENTIFIED) >= 100


@pytest.mark.parametrize("name, code, part, edition", NAMES)
def test_identifies(name, code, part, edition):
    got = identify(name)
    assert isinstance(got, Identified), got
    assert (got.avid.code, got.part, got.edition) == (code, part, edition)


@pytest.mark.parametrize("name, words", UNIDENTIFIED)
def test_unidentified_says_why(name, words):
    got = identify(name)
    assert isinstance(got, Unidentified), got
    assert got.name == name
    for word in words:
        assert word in got.reason


# Canonical AVIDs and the messy ways people write each of them.
CANONICAL = ["ABC-123", "SSIS-001", "IPX-999", "MIDV-045", "HEYZO-1234", "STARS-800",
             "JUL-777", "ABP-12", "CAWD-1000", "PRED-321", "FSDSS-555", "FC2-PPV-1234567",
             "FC2-PPV-765432", "259LUXU-1234"]
FORMS = [
    "{c}", "{l}", "{u}", "{s}", "[site.com]{c}", "{l}@site", "site.com@{c}", "{c}_site.com",
    "hhd800.com@{l}", "{c} 1080p", "{c} x264 HD", "[中文字幕]{c}", "{c} 2024-03-01",
    "【www.site.net】{c} タイトル", "({c})", "{c} [FHD][x265]",
]


def _forms(avid: str):
    letters_digits = avid.replace("FC2-PPV-", "FC2PPV")
    for form in FORMS:
        yield form.format(c=avid, l=avid.lower(), u=avid.replace("-", "_"),
                          s=letters_digits.replace("-", "") if not avid[0].isdigit() else avid)


@pytest.mark.parametrize("avid", CANONICAL)
@pytest.mark.parametrize("ext", [".mp4", ".mkv", ""])
def test_every_messy_form_identifies_back(avid, ext):
    for name in _forms(avid):
        got = identify(name + ext)
        assert isinstance(got, Identified), (name, got)
        assert got.avid == parse(avid), name
        assert got.part is None, name


@pytest.mark.parametrize("avid", [a for a in CANONICAL if not a.startswith("FC2")])
@pytest.mark.parametrize("suffix, part, edition", [
    ("-CD1", 1, ""), ("-cd2", 2, ""), ("-A", 1, ""), ("-B", 2, ""), (" part1", 1, ""),
    ("pt2", 2, ""), ("-C", None, "C"), ("-UC", None, "UC"), ("-U", None, "U"), ("ch", None, "C"),
    ("-C-CD2", 2, "C"), ("-UC-B", 2, "UC"),
])
def test_parts_and_editions_after_every_code(avid, suffix, part, edition):
    for name in (avid + suffix, "[site.com]" + avid.lower() + suffix + " 1080p"):
        got = identify(name + ".mp4")
        assert isinstance(got, Identified), (name, got)
        assert (got.avid.code, got.part, got.edition) == (avid, part, edition), name


@pytest.mark.parametrize("letters, number, code", [
    ("abc", 123, "ABC-123"), ("ssis", 1, "SSIS-001"), ("midv", 45, "MIDV-045"),
    ("ipx", 999, "IPX-999"),
])
@pytest.mark.parametrize("form", ["{l}{n:05d}", "1{l}{n:05d}", "h_123{l}{n:05d}",
                                  "118{l}{n:05d}hhb", "hhd800.com@{l}{n:05d}"])
def test_dmm_content_ids(letters, number, code, form):
    got = identify(form.format(l=letters, n=number) + ".mp4")
    assert isinstance(got, Identified), got
    assert got.avid.code == code


@pytest.mark.parametrize("path, video", [
    ("a.mp4", True), ("A.MKV", True), ("x/y/z.avi", True), ("b.wmv", True), ("c.ts", True),
    ("d.m4v", True), ("e.mov", True), ("f.flv", True), ("g.webm", True), ("h.Mp4", True),
    ("ABC-123.nfo", False), ("cover.jpg", False), ("sub.srt", False), ("ABC-123", False),
    ("ABC-123.mp4.part", False), ("mp4", False), ("x.txt", False),
])
def test_is_video(path, video):
    assert is_video(path) is video
