from pipeline import events as ev
from pipeline.events import Events, ProgressThrottle


class Clock:
    def __init__(self):
        self.t = 0.0

    def __call__(self):
        return self.t


def test_throttle_at_most_once_a_second_and_always_100():
    clock = Clock()
    th = ProgressThrottle(1.0, clock=clock)
    passed = []
    for i in range(1, 100):
        clock.t = i * 0.05  # 20 updates a second for ~5 s
        if th.allow(float(i)):
            passed.append(i)
    assert 4 <= len(passed) <= 6
    assert th.allow(100.0)
    assert not th.allow(100.0)  # exactly one at 100 %


def test_emit_and_read_after(r):
    e = Events(r)
    first = e.emit(ev.QUEUED, avid="ABC-123", job_id="j1", stage="queued", data={"status": "queued"})
    second = e.emit(ev.PROGRESS, avid="ABC-123", job_id="j1", stage="download", data={"percent": 50})
    got = e.after(first)
    assert [x.id for x in got] == [second]
    msg = got[0].to_message()
    assert msg["type"] == "progress_update" and msg["id"] == second
    assert msg["data"]["task_id"] == "j1" and msg["data"]["avid"] == "ABC-123" and msg["data"]["percent"] == 50
    assert [x.id for x in e.after("0")] == [first, second]
