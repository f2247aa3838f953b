/// The console's stylesheet and script, served from the binary (`/ui/assets/…`): no build step, no
/// Node toolchain, nothing fetched from elsewhere (the Content-Security-Policy allows only this origin).
enum ConsoleAssets {
    static let css = #"""
:root { --fg: #1d2330; --muted: #5d6678; --line: #dde2ea; --bg: #f6f7f9; --card: #fff; --accent: #2f5bd3;
  --ok: #1f7a45; --bad: #b3261e; --warn: #9a6200; --idle: #5d6678; font-size: 15px; }
* { box-sizing: border-box; }
body { margin: 0; font-family: system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; color: var(--fg); background: var(--bg); line-height: 1.45; }
a { color: var(--accent); text-decoration: none; } a:hover { text-decoration: underline; }
header.top { display: flex; flex-wrap: wrap; align-items: center; gap: .4rem 1.2rem; padding: .6rem 1.2rem; background: #16203a; color: #fff; }
header.top .brand { font-weight: 700; letter-spacing: .02em; color: #fff; margin-right: .6rem; }
header.top nav { display: flex; flex-wrap: wrap; gap: .2rem .9rem; flex: 1; }
header.top nav a { color: #c9d4f2; padding: .15rem 0; } header.top nav a.current { color: #fff; border-bottom: 2px solid #8fb0ff; }
header.top form.find { display: flex; gap: .3rem; } header.top form.find input { width: 13rem; }
header.top .who { color: #c9d4f2; font-size: .9rem; display: flex; gap: .5rem; align-items: center; }
main { max-width: 1200px; margin: 0 auto; padding: 1rem 1.2rem 3rem; }
h1 { font-size: 1.35rem; margin: .4rem 0 1rem; } h2 { font-size: 1.1rem; margin: 1.6rem 0 .6rem; }
.card { background: var(--card); border: 1px solid var(--line); border-radius: 8px; padding: 1rem; margin-bottom: 1rem; }
.table-wrap { overflow-x: auto; background: var(--card); border: 1px solid var(--line); border-radius: 8px; }
table { border-collapse: collapse; width: 100%; font-size: .93rem; }
th, td { text-align: left; padding: .45rem .7rem; border-bottom: 1px solid var(--line); vertical-align: top; }
th { background: #eef1f6; font-weight: 600; white-space: nowrap; } tr:last-child td { border-bottom: 0; }
td.num, th.num { text-align: right; font-variant-numeric: tabular-nums; }
code, .mono { font-family: ui-monospace, SFMono-Regular, Menlo, Consolas, monospace; font-size: .88rem; }
pre { background: #f1f3f7; border: 1px solid var(--line); border-radius: 6px; padding: .7rem; overflow-x: auto; white-space: pre-wrap; word-break: break-word; margin: 0; }
.status { display: inline-block; padding: .05rem .5rem; border-radius: 999px; font-size: .82rem; font-weight: 600; background: #e8ebf1; color: var(--idle); }
.status.succeeded { background: #dcf3e5; color: var(--ok); } .status.dead, .status.failed { background: #fbe0de; color: var(--bad); }
.status.running, .status.queued { background: #dfe8fd; color: var(--accent); } .status.retrying, .status.scheduled, .status.waiting { background: #fdf0d5; color: var(--warn); }
.status.cancelled, .status.skipped { background: #ececec; color: #555; }
form.filters { display: grid; grid-template-columns: repeat(auto-fill, minmax(11rem, 1fr)); gap: .6rem .8rem; align-items: end; }
form.filters label { display: flex; flex-direction: column; font-size: .82rem; color: var(--muted); gap: .2rem; }
input, select, button { font: inherit; padding: .35rem .5rem; border: 1px solid #c3cad6; border-radius: 6px; background: #fff; color: var(--fg); }
select[multiple] { min-height: 6.2rem; }
button { cursor: pointer; background: var(--accent); color: #fff; border-color: var(--accent); }
button.secondary { background: #fff; color: var(--fg); border-color: #c3cad6; } button.danger { background: var(--bad); border-color: var(--bad); }
.actions { display: flex; flex-wrap: wrap; gap: .5rem; align-items: center; } .actions form { margin: 0; }
.notice { padding: .6rem .9rem; border-radius: 6px; background: #e4f3ea; border: 1px solid #b7dfc6; margin-bottom: 1rem; }
.notice.error { background: #fbe7e5; border-color: #f0c3be; }
.muted { color: var(--muted); } .small { font-size: .85rem; }
dl.facts { display: grid; grid-template-columns: max-content 1fr; gap: .3rem 1rem; margin: 0; } dl.facts dt { color: var(--muted); } dl.facts dd { margin: 0; word-break: break-word; }
.grid2 { display: grid; grid-template-columns: repeat(auto-fit, minmax(22rem, 1fr)); gap: 1rem; }
.chart { display: flex; align-items: flex-end; gap: 1px; height: 90px; border-bottom: 1px solid var(--line); }
.chart span { flex: 1; display: flex; flex-direction: column-reverse; min-width: 2px; }
.chart i { display: block; background: #7fa0f0; } .chart i.bad { background: #e0837c; }
.pager { display: flex; gap: 1rem; margin-top: .8rem; align-items: center; }
.login { max-width: 26rem; margin: 4rem auto; } .login input { width: 100%; margin: .4rem 0 .8rem; }
.timeline td:first-child { white-space: nowrap; }
@media (max-width: 640px) { main { padding: .8rem .6rem 2rem; } header.top form.find input { width: 9rem; } th, td { padding: .4rem .45rem; } }
"""#

    /// Live refresh: an element with `data-refresh="<seconds>"` is replaced by its newer copy from the
    /// same URL while the page is visible; forms with `data-confirm` ask first. The page reads fully
    /// without it.
    static let js = #"""
(function () {
  "use strict";
  function refresh(element) {
    var seconds = parseInt(element.getAttribute("data-refresh"), 10) || 5;
    setInterval(function () {
      if (document.hidden) { return; }
      fetch(window.location.href, { credentials: "same-origin", headers: { "X-Console-Refresh": "1" } })
        .then(function (response) { return response.ok ? response.text() : null; })
        .then(function (html) {
          if (!html) { return; }
          var fresh = new DOMParser().parseFromString(html, "text/html").getElementById(element.id);
          if (fresh) { element.replaceChildren.apply(element, Array.prototype.slice.call(fresh.childNodes)); }
        })
        .catch(function () {});
    }, seconds * 1000);
  }
  document.querySelectorAll("[data-refresh]").forEach(refresh);
  document.querySelectorAll("form[data-confirm]").forEach(function (form) {
    form.addEventListener("submit", function (event) {
      if (!window.confirm(form.getAttribute("data-confirm"))) { event.preventDefault(); }
    });
  });
})();
"""#
}
