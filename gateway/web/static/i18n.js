// The page's words by key, in the chosen language, and numbers, sizes and times in its format.
//
// Every user-visible string goes through t(key, english, vars) (scripts) or a data-i18n*
// attribute (index.html), so the Simplified Chinese dictionary below can cover it; English is
// the text written in the code, so the English dictionary stays empty.
//
// The page, not the server, picks the language: only the page knows the choice remembered in
// localStorage, and navigator.languages is the list the browser sends as Accept-Language. This
// file is loaded without `defer` in <head>, so <html lang> (and with it the CJK font stack in
// app.css) is set before anything paints, and a MutationObserver translates each element of the
// page as the parser adds it, before the frame that would show it: no English first paint.
// Chinese of any script or region (zh, zh-CN, zh-Hans, zh-SG, and also zh-TW, zh-HK, zh-Hant)
// gets Simplified Chinese: there is no Traditional dictionary, and a Traditional reader reads
// Simplified far more easily than English; <html lang="zh-CN"> says truthfully what the text is.
// Anything else gets English. The top bar's switch overrides the choice and remembers it.
//
// The zh-CN dictionary is kept as strict JSON (double quotes, no trailing comma):
// tests/test_web_i18n.py reads it to check that it covers every key the page uses.
(function () {
  "use strict";
  const STORE_KEY = "nassav.lang";
  const SUPPORTED = ["en", "zh-CN"];
  const ATTRS = { "data-i18n-placeholder": "placeholder", "data-i18n-title": "title",
                  "data-i18n-aria-label": "aria-label" };
  // The top bar's language switch is a <select data-lang-switch> with one <option> per language.
  const SELECTOR = "[data-i18n],[data-lang-switch]," + Object.keys(ATTRS).map((a) => `[${a}]`).join(",");

  const zhCN = {
    "subs.title": "订阅",
    "subs.kind_actress": "女优",
    "subs.kind_maker": "制作商",
    "subs.kind_label": "发行商",
    "subs.kind_series": "系列",
    "subs.kind_director": "导演",
    "subs.kind_search": "搜索",
    "subs.kind_label_field": "要订阅的对象",
    "subs.key_placeholder": "列表网址中的编号，或搜索词",
    "subs.key_label": "目录站的编号或搜索词",
    "subs.action_label": "新作品的处理方式",
    "subs.action_metadata": "仅元数据",
    "subs.action_download": "下载",
    "subs.backfill_placeholder": "首次检查：最多 N 部",
    "subs.backfill_label": "首次检查最多加入队列的作品数",
    "subs.since_label": "只要在此日期或之后发行的作品",
    "subs.follow": "订阅",
    "subs.empty": "还没有订阅。",
    "subs.not_checked": "尚未检查",
    "subs.check_error": "出错：{message}",
    "subs.check_result": "读取 {pages} 页，{queued} 部加入队列",
    "subs.checked": "{when}检查",
    "subs.check_now": "立即检查",
    "subs.check_queued": "工作进程很快会检查它",
    "subs.unfollow": "取消订阅",
    "subs.confirm_unfollow": "不再订阅 {name}？",
    "subs.unfollowed": "已取消订阅",
    "subs.failed": "失败（HTTP {status}）",
    "subs.followed": "已订阅 {name}",
    "subs.more": "更多筛选条件",
    "subs.name_placeholder": "显示名称（可选）",
    "subs.name_label": "显示名称",
    "subs.interval_placeholder": "每 N 分钟检查一次",
    "subs.interval_minutes": "此处以分钟计：1 到 43200",
    "subs.interval_label": "两次检查间隔的分钟数",
    "subs.genres_placeholder": "跳过的类别，用逗号分隔",
    "subs.genres_label": "跳过带有其中任一类别的作品",
    "subs.regex_placeholder": "标题须匹配（正则表达式）",
    "subs.regex_label": "标题必须匹配的正则表达式",
    "subs.editions_label": "只要这些版本（不选：任意）",
    "subs.edition_c": "{code}（中文字幕）",
    "subs.edition_uc": "{code}（无码流出）",
    "subs.edition_u": "{code}（无码）",
    "subs.edition_regular": "普通版",
    "subs.f_since": "{date} 起",
    "subs.f_skip": "跳过：{genres}",
    "subs.f_editions": "版本：{editions}",
    "subs.f_regex": "标题 ~ /{regex}/",
    "subs.f_backfill": "首次最多 {n} 部",
    "subs.f_interval": "每 {minutes} 分钟",
    "subs.f_none": "无筛选条件",
    "subs.pending": "{n} 部待加入队列",
    "subs.last_checks": "最近的检查",
    "subs.check_line": "{when}：{pages} 页，{new} 部新作，{queued} 部加入队列，{skipped} 部跳过 — {stopped}",
    "subs.check_resumed": "已补完被中断的检查留下的作品：{avids}",

    "notify.title": "通知",
    "notify.refresh": "刷新",
    "notify.refresh_title": "重新读取目标和投递记录",
    "notify.targets": "目标",
    "notify.no_targets": "尚未配置目标（见配置中的 {keys}）。",
    "notify.deliveries": "最近的投递",
    "notify.filter_label": "显示哪种状态的投递",
    "notify.status_queued": "排队中",
    "notify.status_retrying": "重试中",
    "notify.status_delivered": "已送达",
    "notify.status_failed": "失败",
    "notify.status_lost": "丢失",
    "notify.status_all": "全部",
    "notify.events": "事件：{events}",
    "notify.send_test": "发送测试",
    "notify.attempts": "尝试次数：{n}",
    "notify.recovered": "停滞后已重发一次",
    "notify.empty_all": "还没有投递记录。",
    "notify.empty_status": "没有“{status}”的投递。",
    "notify.test_sending": "发送中…",
    "notify.failed_http": "失败（HTTP {status}）",
    "notify.test_queued": "已排队",
    "notify.test_result": "测试：{outcome}",

    "topbar.health_title": "工作进程与剩余磁盘空间",
    "topbar.sign_out": "退出登录",
    "topbar.sign_out_title": "清除此浏览器中保存的 API 令牌",
    "topbar.language": "界面语言",
    "live.connecting": "连接中",
    "live.on": "实时",
    "live.reconnecting": "重新连接中",
    "live.sign_in": "需要登录",

    "add.title": "添加",
    "add.placeholder": "添加 AVID：ABC-123、fc2 ppv 123456、xyz001……（可一次粘贴任意多个）",
    "add.input_label": "要添加的 AVID，用空格、逗号或换行分隔",
    "add.mode_label": "操作",
    "add.mode_download": "下载",
    "add.mode_metadata": "仅元数据",
    "add.button": "添加",
    "add.queued": "已加入队列",
    "add.failed": "无法添加（HTTP {status}）",

    "import.open": "导入已有收藏……",
    "import.title": "导入已有收藏",
    "import.explain": "按文件名识别文件，连同元数据放入媒体库；无法识别的文件保持原位。",
    "import.path_label": "服务器上的文件夹",
    "import.mode_label": "文件进入媒体库的方式",
    "import.mode_move": "移动",
    "import.mode_hardlink": "硬链接",
    "import.mode_copy": "复制",
    "import.mode_in_place": "保持原位",
    "import.dry_run": "试运行（只显示计划）",
    "import.close": "关闭",
    "import.start": "开始",
    "import.starting": "正在开始……",
    "import.refused": "被拒绝：{reason}",
    "import.queued": "已加入队列，等待工作进程……",
    "import.progress": "{done} / {total} 个文件",
    "import.failed": "导入失败：{reason}",
    "import.planned": "计划：导入 {place} 个，{done} 个已在库中，{other} 个保持原位",
    "import.done": "已导入 {place} 个，{done} 个已在库中，{other} 个保持原位",

    "library.title": "媒体库",
    "library.filter_label": "显示",
    "library.filter_all": "全部",
    "library.filter_downloaded": "已下载",
    "library.filter_pending": "无视频",
    "library.search_placeholder": "搜索 AVID、标题、演员……",
    "library.search_label": "搜索媒体库",
    "library.more": "显示更多",
    "library.no_listing": "此服务器不提供媒体库列表。",
    "library.load_failed": "媒体库加载失败（{reason}）。",
    "library.no_match": "没有与“{query}”匹配的内容。",
    "library.empty": "媒体库还是空的：在上方添加一个 AVID 吧。",
    "library.badge_video": "▶ 视频",
    "library.badge_metadata": "元数据",
    "library.edition_c": "中字",
    "library.edition_uc": "无码 · 中字",
    "library.edition_u": "无码",

    "queue.title": "队列",
    "queue.empty": "队列中没有任务。",
    "queue.recent": "最近",
    "queue.count": "{running} 个进行中 · {waiting} 个等待中",
    "queue.waiting_worker": "等待工作进程",
    "queue.waiting_slot": "等待下载名额",
    "queue.downloaded": "已下载",
    "queue.added": "已添加",
    "queue.cancelled": "已取消",
    "queue.failed_at": "失败于：{stage}",
    "queue.dismiss": "移除",
    "queue.retry": "重试",
    "queue.cancel": "取消",
    "queue.progress_label": "{avid} 进度",
    "queue.segments": "{done}/{total} 个分片",
    "queue.eta": "剩余 {eta}",
    "queue.done": "完成",
    "queue.failed": "失败",
    "queue.no_source": "没有任何来源收录此作品：",
    "queue.all_failed": "所有来源均失败：",
    "queue.cancel_failed": "无法取消 {avid}（HTTP {status}）",

    "stage.queued": "排队中",
    "stage.resolve": "查找来源",
    "stage.scrape": "抓取元数据",
    "stage.cover": "下载封面",
    "stage.download": "下载视频",
    "stage.download_wait": "等待下载",
    "stage.import": "导入",

    "sources.title": "来源",
    "sources.not_reported": "此服务器未提供来源信息。",
    "sources.unavailable": "暂不可用。",
    "sources.healthy": "正常",
    "sources.failing": "失败 ×{count}",
    "sources.unused": "尚未使用",
    "sources.off": "已停用",
    "sources.paused": "已暂停",
    "sources.paused_retry": "已暂停 · {when}重试",
    "sources.weight": "权重 {weight}",
    "sources.last_used": " · 上次使用：{when}",

    "health.unreachable": "服务器无法访问",
    "health.redis_down": "Redis 已断开",
    "health.workers_one": "{count} 个工作进程",
    "health.workers_other": "{count} 个工作进程",
    "health.no_workers": "没有工作进程",
    "health.free": "剩余 {size}",
    "health.workers_title": "元数据工作进程：{metadata}，下载工作进程：{download}",
    "health.data_title": "数据目录：{path}",
    "health.wait_hours": "下载等待中：不在下载时段，{until}（{zone}）恢复",
    "health.wait_disk": "下载等待中：剩余 {free}，需要 {need}",

    "token.title": "API 令牌",
    "token.explain": "此服务器需要 API 令牌。令牌只保存在这个浏览器中。",
    "token.refused_note": "该令牌被拒绝。",
    "token.input_label": "API 令牌",
    "token.cancel": "取消",
    "token.use": "使用令牌",
    "token.unreachable": "无法连接服务器",
    "token.needed": "需要 API 令牌",
    "token.refused": "API 令牌被拒绝",

    "detail.open": "打开 {avid}",
    "detail.close": "关闭",
    "detail.actions": "操作",
    "detail.files": "文件",
    "detail.history": "尝试记录",
    "detail.history_none": "还没有任何尝试记录。",
    "detail.history_more": "显示更早的尝试",
    "detail.http": "HTTP 状态 {status}",
    "detail.failed": "{what}失败：{message}",
    "detail.missing": "{avid} 不在库中（或其元数据无法读取）。",
    "detail.loading": "加载元数据",
    "detail.history_loading": "加载尝试记录",
    "detail.player": "{avid} 的视频",
    "detail.parts": "{avid} 的分段",
    "detail.part": "第 {n} 段",
    "detail.play_error": "无法在此播放该视频（{detail}）；文件在库文件夹中。",
    "detail.cover": "{avid} 的封面",
    "detail.no_video": "尚未下载视频。",
    "detail.download": "下载",
    "detail.running": "此影片有任务正在运行",
    "detail.refresh": "刷新元数据",
    "detail.favourite": "收藏",
    "detail.watched": "已观看",
    "detail.delete_video": "删除视频",
    "detail.delete_all": "全部删除",
    "detail.original_title": "原标题",
    "detail.source_title": "来源处的标题",
    "detail.translated_title": "译名",
    "detail.released": "发行日期",
    "detail.runtime": "片长",
    "detail.minutes": "{n} 分钟",
    "detail.actors": "演员",
    "detail.genres": "类别",
    "detail.maker": "制作商",
    "detail.label": "发行商",
    "detail.series": "系列",
    "detail.director": "导演",
    "detail.source": "来源",
    "detail.duration": "时长",
    "detail.downloaded_at": "下载于",
    "detail.status_queued": "等待中",
    "detail.status_running": "运行中",
    "detail.status_completed": "已完成",
    "detail.status_failed": "失败",
    "detail.status_cancelled": "已取消",
    "detail.kind_download": "下载",
    "detail.kind_metadata": "元数据",
    "detail.at_stage": "于{stage}阶段",
    "detail.via": "来自 {source}",
    "detail.took": "耗时 {s} 秒",
    "detail.live_download": "下载中：{pct}{speed}",
    "detail.live_running": "处理中：{stage}",
    "detail.queued": "已加入下载队列。",
    "detail.refresh_queued": "已加入元数据刷新队列。",
    "detail.save_status": "保存",
    "detail.confirm_delete_video": "删除 {avid} 的视频？元数据和封面会保留。",
    "detail.confirm_delete_original": "{avid} 的视频是你原有的文件，是原地导入的：\n{path}\n要从磁盘上删除这个文件吗？",
    "detail.video_deleted": "视频已删除。",
    "detail.confirm_delete_all": "彻底删除 {avid}：视频、元数据、封面和 NFO？",
    "detail.edition": "版本",
    "detail.upgrade": "查找更好的版本",
    "detail.upgrade_queued": "正在查找更好的版本；找到后会在校验通过后替换视频。",
    "edition.c": "中文字幕",
    "edition.uc": "无码中文字幕",
    "edition.u": "无码",
    "edition.regular": "普通版",
    "detail.kind_upgrade": "版本升级",
    "queue.edition_checked": "已检查版本",

    "hist.asked": "请求",
    "hist.avid_blocked": "{avid} 在屏蔽列表中：不会再加入队列。",
    "hist.avid_blocked_why": "{avid} 在屏蔽列表中：{reason}",
    "hist.block": "屏蔽此作品",
    "hist.block_prompt": "屏蔽 {avid}：以后不会再加入队列。原因（可选）：",
    "hist.block_source": "对此作品屏蔽",
    "hist.by_import": "导入（{id}）",
    "hist.by_subscription": "由订阅 {id} 发现",
    "hist.block_source_prompt": "对 {avid} 跳过 {source}（该站的版本有问题）。原因（可选）：",
    "hist.blocked": "被站点拦截",
    "hist.blocked_by_user": "已被用户屏蔽",
    "hist.blocklist": "屏蔽列表",
    "hist.blocklist_loading": "加载屏蔽列表",
    "hist.done": "完成",
    "hist.found": "找到",
    "hist.layout_changed": "页面结构已变化",
    "hist.not_blocked": "不在屏蔽列表中。",
    "hist.not_found": "未找到",
    "hist.pick_source": "对此作品要跳过的来源",
    "hist.refresh": "刷新：{parts}",
    "hist.retry": "从{stage}重试",
    "hist.retry_of": "重试 {job}，从{stage}开始",
    "hist.retry_queued": "已从{stage}重新加入队列。",
    "hist.retry_title": "以相同选项、从停下的阶段重新运行该任务",
    "hist.retry_what": "重试",
    "hist.reused": "沿用",
    "hist.skipped": "已跳过（退避中）",
    "hist.source_blocked": "此作品跳过 {source}。",
    "hist.source_blocked_why": "此作品跳过 {source}：{reason}",
    "hist.unblock": "移出屏蔽列表",
    "hist.unblock_source": "重新使用",
    "hist.upstream_error": "站点错误"
  };

  const dictionaries = { en: {}, "zh-CN": zhCN };
  const originals = new WeakMap(); // element -> its English text and attributes, as written in index.html
  const listeners = [];

  // The first language in the browser's list that the page has; English when there is none.
  function negotiate(prefs) {
    for (const p of prefs || []) {
      const tag = String(p).toLowerCase();
      if (tag === "zh" || tag.startsWith("zh-")) return "zh-CN";
      if (tag === "en" || tag.startsWith("en-")) return "en";
    }
    return "en";
  }

  function stored() {
    try {
      const v = localStorage.getItem(STORE_KEY);
      return SUPPORTED.includes(v) ? v : null;
    } catch (e) {
      return null; // storage blocked: fall back to the browser's languages
    }
  }

  let lang = stored() || negotiate(navigator.languages && navigator.languages.length
    ? navigator.languages : [navigator.language]);
  document.documentElement.lang = lang;

  function format(value) {
    return typeof value === "number" ? new Intl.NumberFormat(lang).format(value) : String(value);
  }

  /** The text for `key` in the current language (`english` when it has none), {vars} filled in once. */
  function t(key, english, vars) {
    const s = (dictionaries[lang] && dictionaries[lang][key]) || english || key;
    // One pass, so a value that itself holds "{x}" (a search text) is never substituted again.
    return vars ? s.replace(/\{(\w+)\}/g, (m, k) => (k in vars ? format(vars[k]) : m)) : s;
  }

  function translate(el) {
    let en = originals.get(el);
    if (!en) {
      en = { attrs: {} };
      if (el.hasAttribute("data-i18n")) en.text = el.textContent;
      for (const [a, target] of Object.entries(ATTRS)) {
        if (el.hasAttribute(a)) en.attrs[target] = el.getAttribute(target) || "";
      }
      originals.set(el, en);
      if (el.hasAttribute("data-lang-switch")) el.addEventListener("change", () => setLang(el.value));
    }
    if (el.hasAttribute("data-lang-switch")) el.value = lang;
    if (en.text !== undefined) el.textContent = t(el.getAttribute("data-i18n"), en.text);
    for (const [a, target] of Object.entries(ATTRS)) {
      if (target in en.attrs) el.setAttribute(target, t(el.getAttribute(a), en.attrs[target]));
    }
  }

  /** Translate every data-i18n* element under `root` (the whole page by default). */
  function apply(root) {
    const base = root || document;
    if (base.matches && base.matches(SELECTOR)) translate(base);
    base.querySelectorAll(SELECTOR).forEach(translate);
  }

  // An element is finished parsing once something follows it in the document; until then its
  // text may still be arriving, so it waits for the next batch (or DOMContentLoaded).
  function closed(node) {
    for (let n = node; n; n = n.parentNode) if (n.nextSibling) return true;
    return false;
  }

  const waiting = new Set();
  const observer = new MutationObserver((records) => {
    for (const r of records) {
      for (const n of r.addedNodes) {
        if (n.nodeType !== 1) continue;
        if (n.matches(SELECTOR)) waiting.add(n);
        n.querySelectorAll(SELECTOR).forEach((e) => waiting.add(e));
      }
    }
    for (const el of waiting) {
      if (closed(el)) { translate(el); waiting.delete(el); }
    }
  });
  observer.observe(document.documentElement, { childList: true, subtree: true });
  document.addEventListener("DOMContentLoaded", () => {
    observer.disconnect();
    waiting.clear();
    apply(document);
  }, { once: true });

  /** Switch the page to `next`, remember it, and let the page re-render its words. */
  function setLang(next) {
    if (!SUPPORTED.includes(next)) return;
    try { localStorage.setItem(STORE_KEY, next); } catch (e) { /* not remembered, still switched */ }
    if (next === lang) return;
    lang = next;
    document.documentElement.lang = lang;
    apply(document);
    for (const fn of listeners) fn(lang);
  }

  // Numbers, sizes and times in the language's own format.
  function number(n, digits) {
    const opts = digits === undefined ? {} : { minimumFractionDigits: digits, maximumFractionDigits: digits };
    return new Intl.NumberFormat(lang, opts).format(n);
  }
  function percent(pct) {
    const digits = pct < 100 ? 1 : 0;
    return new Intl.NumberFormat(lang, { style: "percent", minimumFractionDigits: digits,
                                         maximumFractionDigits: digits }).format(pct / 100);
  }
  // Binary multiples, shown with the usual short unit names (as the server's speeds are).
  function bytes(n, perSecond) {
    const units = ["byte", "kilobyte", "megabyte", "gigabyte", "terabyte"];
    let i = 0;
    while (n >= 1024 && i < units.length - 1) { n /= 1024; i++; }
    const digits = n < 10 && i ? 1 : 0;
    const parts = new Intl.NumberFormat(lang, { style: "unit", unit: units[i] + (perSecond ? "-per-second" : ""),
                                                unitDisplay: "short", maximumFractionDigits: digits }).formatToParts(n);
    // English spells the short byte out ("3 byte"): B, as for the other units.
    return parts.map((p) => (p.type === "unit" ? p.value.replace(/^bytes?/, "B") : p.value)).join("");
  }
  // "in 5 min." / "5 min. ago" (and 5分钟后 / 5分钟前): positive seconds lie ahead.
  function relative(seconds) {
    const rtf = new Intl.RelativeTimeFormat(lang, { numeric: "always", style: "short" });
    const s = Math.round(seconds);
    const a = Math.abs(s);
    if (a < 60) return rtf.format(s, "second");
    if (a < 3600) return rtf.format(Math.round(s / 60), "minute");
    return rtf.format(Number((s / 3600).toFixed(a < 36000 ? 1 : 0)), "hour");
  }
  const plural = (n) => new Intl.PluralRules(lang).select(n);

  window.nassavI18n = {
    t, apply, setLang, negotiate, dictionaries, supported: SUPPORTED,
    number, percent, bytes, relative, plural,
    onChange(fn) { listeners.push(fn); },
    get lang() { return lang; },
  };
  window.t = t;
})();
