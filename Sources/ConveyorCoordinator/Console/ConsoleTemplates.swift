import Mustache

/// The console's pages, as Mustache templates compiled once at start. `{{name}}` escapes HTML, so
/// params, errors and tags a task carries always render as text; no template uses the unescaped form
/// on anything a client sent.
enum ConsoleTemplates {
    static func library() throws -> MustacheLibrary {
        var library = MustacheLibrary()
        for (name, text) in all { try library.register(text, named: name) }
        return library
    }

    static let all: [(String, String)] = [
        ("header", header), ("footer", footer), ("login", login), ("overview", overview), ("tasks", tasks), ("task", task),
        ("dead", dead), ("workflows", workflows), ("workflow", workflow), ("schedules", schedules), ("message", message),
    ]

    static let header = #"""
<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{{title}} · Conveyor</title>
<link rel="icon" href="data:,">
<link rel="stylesheet" href="/ui/assets/console.css">
<script src="/ui/assets/console.js" defer></script>
</head>
<body>
<header class="top">
  <a class="brand" href="/ui">Conveyor</a>
  {{#signedIn}}
  <nav>
    <a href="/ui" {{#navOverview}}class="current"{{/navOverview}}>Overview</a>
    <a href="/ui/tasks" {{#navTasks}}class="current"{{/navTasks}}>Tasks</a>
    <a href="/ui/dead" {{#navDead}}class="current"{{/navDead}}>Dead letters</a>
    <a href="/ui/workflows" {{#navWorkflows}}class="current"{{/navWorkflows}}>Workflows</a>
    <a href="/ui/schedules" {{#navSchedules}}class="current"{{/navSchedules}}>Schedules</a>
  </nav>
  <form class="find" method="get" action="/ui/find" role="search">
    <input name="q" placeholder="Task id or correlation id" aria-label="Task id or correlation id">
    <button class="secondary" type="submit">Go</button>
  </form>
  <div class="who">
    <span>{{who}}{{^admin}} · read only{{/admin}}</span>
    <form method="post" action="/ui/logout"><input type="hidden" name="csrf" value="{{csrf}}"><button class="secondary" type="submit" id="sign-out">Sign out</button></form>
  </div>
  {{/signedIn}}
</header>
<main>
{{#notice}}<div class="notice" role="status">{{notice}}</div>{{/notice}}
{{#problem}}<div class="notice error" role="alert">{{problem}}</div>{{/problem}}
"""#

    static let footer = #"""
</main>
</body>
</html>
"""#

    static let login = #"""
{{> header}}
<div class="card login">
  <h1>Sign in</h1>
  <p class="muted">With an API token that has the read or admin scope. The session lasts {{lifetime}}.</p>
  <form method="post" action="/ui/login">
    <input type="hidden" name="next" value="{{next}}">
    <label for="token">API token</label>
    <input id="token" name="token" type="password" autocomplete="current-password" required autofocus>
    <button type="submit" id="sign-in">Sign in</button>
  </form>
</div>
{{> footer}}
"""#

    static let message = #"""
{{> header}}
<h1>{{heading}}</h1>
<p>{{text}}</p>
<p><a href="/ui">Back to the overview</a></p>
{{> footer}}
"""#

    static let overview = #"""
{{> header}}
<h1>Overview</h1>
<div id="live" data-refresh="5">
<div class="grid2">
  <div class="card">
    <h2 style="margin-top:0">Throughput, last 15 minutes</h2>
    <div class="chart" aria-label="tasks ended per 10 seconds">
      {{#chart}}<span title="{{label}}"><i style="height:{{okHeight}}px"></i><i class="bad" style="height:{{badHeight}}px"></i></span>{{/chart}}
    </div>
    <p class="small muted">{{rateText}} · recorded by this coordinator · blue succeeded, red dead, failed or cancelled</p>
  </div>
  <div class="card">
    <h2 style="margin-top:0">Agents</h2>
    {{#hasAgents}}
    <div class="table-wrap"><table>
      <tr><th>Agent</th><th>Queues</th><th class="num">Running</th><th>Now running</th></tr>
      {{#agents}}<tr><td class="mono">{{id}}</td><td>{{queues}}</td><td class="num">{{inFlight}} / {{concurrency}}</td><td class="small">{{running}}</td></tr>{{/agents}}
    </table></div>
    {{/hasAgents}}
    {{^agents}}<p class="muted">No live agent.</p>{{/agents}}
  </div>
</div>
<h2>Queues</h2>
<div class="table-wrap"><table id="queues">
  <tr><th>Queue</th><th class="num">Ready</th><th class="num">Running</th><th class="num">Scheduled</th><th class="num">Delayed</th><th class="num">Dead</th><th>Paused</th>{{#admin}}<th></th>{{/admin}}</tr>
  {{#queues}}
  <tr>
    <td><a href="/ui/tasks?queue={{name}}">{{name}}</a></td><td class="num">{{ready}}</td><td class="num">{{running}}</td>
    <td class="num">{{scheduled}}</td><td class="num">{{delayed}}</td><td class="num"><a href="/ui/dead?queue={{name}}">{{dead}}</a></td>
    <td>{{#paused}}<span class="status retrying">{{paused}}</span>{{/paused}}{{^paused}}<span class="muted">no</span>{{/paused}}</td>
    {{#admin}}<td><form method="post" action="/ui/queues/{{name}}/{{toggle}}"><input type="hidden" name="csrf" value="{{csrf}}"><button class="secondary" type="submit">{{toggleLabel}}</button></form></td>{{/admin}}
  </tr>
  {{/queues}}
</table></div>
<p class="small muted">Ready, running, delayed and dead from Redis now; scheduled from PostgreSQL (counted up to {{scheduledCap}}). Refreshes every 5 s.</p>
</div>
{{> footer}}
"""#

    static let tasks = #"""
{{> header}}
<h1>Tasks</h1>
<form class="filters card" method="get" action="/ui/tasks">
  <label>Status<select name="status" multiple>{{#statuses}}<option value="{{value}}" {{#selected}}selected{{/selected}}>{{value}}</option>{{/statuses}}</select></label>
  <label>Type<input name="type" value="{{filter.type}}" list="types"></label>
  <label>Queue<input name="queue" value="{{filter.queue}}" list="queues"></label>
  <label>Tag (key:value)<input name="tag" value="{{filter.tag}}" placeholder="customer:acme"></label>
  <label>Correlation id<input name="correlation_id" value="{{filter.correlation_id}}"></label>
  <label>Created after<input name="created_after" value="{{filter.created_after}}" placeholder="2026-12-01T09:00:00Z"></label>
  <label>Created before<input name="created_before" value="{{filter.created_before}}" placeholder="RFC 3339"></label>
  <label>Error contains<input name="error" value="{{filter.error}}"></label>
  <div class="actions"><button type="submit" id="search">Search</button><a href="/ui/tasks">Clear</a></div>
  <datalist id="types">{{#types}}<option value="{{.}}">{{/types}}</datalist>
  <datalist id="queues">{{#queueNames}}<option value="{{.}}">{{/queueNames}}</datalist>
</form>
<div class="table-wrap"><table id="results">
  <tr><th>Id</th><th>Status</th><th>Type</th><th>Queue</th><th class="num">Attempts</th><th>Created</th><th>Finished</th><th>Tags</th><th>Error</th></tr>
  {{#tasks}}
  <tr><td><a class="mono" href="/ui/tasks/{{id}}">{{id}}</a></td><td><span class="status {{status}}">{{status}}</span></td><td>{{type}}</td><td>{{queue}}</td>
      <td class="num">{{attempts}}/{{maxAttempts}}</td><td class="small">{{createdAt}}</td><td class="small">{{finishedAt}}</td><td class="small mono">{{tags}}</td><td class="small">{{error}}</td></tr>
  {{/tasks}}
  {{^tasks}}<tr><td colspan="9" class="muted">{{emptyText}}</td></tr>{{/tasks}}
</table></div>
<div class="pager">
  {{#nextURL}}<a href="{{nextURL}}" id="older">Older →</a>{{/nextURL}}
  {{#firstURL}}<a href="{{firstURL}}">Newest</a>{{/firstURL}}
  <span class="small muted">Newest first · {{pageSize}} per page{{#partial}} · this page searched a bounded stretch of history; go on with “Older”{{/partial}}</span>
</div>
{{#admin}}{{#hasFilter}}
<h2>Act on every match</h2>
<div class="actions card">
  <form method="post" action="/ui/tasks/cancel" data-confirm="Cancel up to 1,000 unfinished tasks matching this search?">
    <input type="hidden" name="csrf" value="{{csrf}}"><input type="hidden" name="query" value="{{query}}">
    <button class="danger" type="submit">Cancel matching (up to 1,000)</button></form>
  <form method="post" action="/ui/tasks/retry" data-confirm="Retry up to 1,000 failed or dead tasks matching this search?">
    <input type="hidden" name="csrf" value="{{csrf}}"><input type="hidden" name="query" value="{{query}}">
    <button type="submit">Retry matching failed or dead (up to 1,000)</button></form>
</div>
{{/hasFilter}}{{/admin}}
{{> footer}}
"""#

    static let task = #"""
{{> header}}
<h1>Task <span class="mono">{{id}}</span> <span class="status {{status}}" id="task-status">{{status}}</span></h1>
{{#admin}}
<div class="actions" style="margin-bottom:1rem">
  {{#cancellable}}<form method="post" action="/ui/tasks/{{id}}/cancel"><input type="hidden" name="csrf" value="{{csrf}}"><button class="danger" type="submit" id="cancel">Cancel</button></form>{{/cancellable}}
  {{#retryable}}<form method="post" action="/ui/tasks/{{id}}/retry"><input type="hidden" name="csrf" value="{{csrf}}"><button type="submit" id="retry">Retry</button></form>{{/retryable}}
</div>
{{/admin}}
<div id="live" {{#live}}data-refresh="2"{{/live}}>
<div class="grid2">
  <div class="card">
    <dl class="facts">
      <dt>Status</dt><dd><span class="status {{status}}">{{status}}</span></dd>
      <dt>Type</dt><dd><a href="/ui/tasks?type={{type}}">{{type}}</a></dd>
      <dt>Queue</dt><dd>{{queue}}</dd>
      <dt>Attempts</dt><dd>{{attempts}} of {{maxAttempts}}</dd>
      <dt>Priority</dt><dd>{{priority}}</dd>
      <dt>Correlation id</dt><dd class="mono"><a href="/ui/tasks?correlation_id={{correlationID}}">{{correlationID}}</a>{{#logsURL}} · <a href="{{logsURL}}" rel="noopener" target="_blank">logs in Grafana</a>{{/logsURL}}</dd>
      {{#idempotencyKey}}<dt>Idempotency key</dt><dd class="mono">{{idempotencyKey}}</dd>{{/idempotencyKey}}
      {{#workflowID}}<dt>Workflow</dt><dd><a href="/ui/workflows/{{workflowID}}">{{workflowID}}</a></dd>{{/workflowID}}
      <dt>Created</dt><dd>{{createdAt}}</dd>
      {{#runAt}}<dt>Runs at</dt><dd>{{runAt}}</dd>{{/runAt}}
      {{#startedAt}}<dt>Started</dt><dd>{{startedAt}}</dd>{{/startedAt}}
      {{#finishedAt}}<dt>Finished</dt><dd>{{finishedAt}}</dd>{{/finishedAt}}
      {{#submittedBy}}<dt>Submitted by</dt><dd>{{submittedBy}}</dd>{{/submittedBy}}
    </dl>
  </div>
  <div class="card">
    <h2 style="margin-top:0">Progress</h2>
    {{#progress}}<pre>{{progress}}</pre>{{/progress}}{{^progress}}<p class="muted">No progress reported.</p>{{/progress}}
    <h2>Tags</h2>
    {{#hasTags}}<dl class="facts">{{#tags}}<dt>{{key}}</dt><dd><a href="/ui/tasks?tag={{key}}:{{value}}">{{value}}</a></dd>{{/tags}}</dl>{{/hasTags}}
    {{^tags}}<p class="muted">None.</p>{{/tags}}
  </div>
</div>
<h2>Params</h2>
<pre id="params">{{params}}</pre>
{{#result}}<h2>Result</h2><pre id="result">{{result}}</pre>{{/result}}
{{#error}}<h2>Error</h2><pre id="error">{{error}}</pre>{{/error}}
<h2>Timeline</h2>
<div class="table-wrap"><table class="timeline" id="timeline">
  <tr><th>At</th><th>Event</th><th class="num">Attempt</th><th>By</th><th>Detail</th></tr>
  {{#timeline}}<tr><td class="small">{{at}}</td><td><span class="status {{status}}">{{status}}</span></td><td class="num">{{attempt}}</td><td class="small mono">{{agent}}</td><td class="small mono">{{detail}}</td></tr>{{/timeline}}
</table></div>
{{#moreHistory}}<p class="small muted">The first {{historyLimit}} events are shown; the API's <code>/v1/tasks/{{id}}/events</code> pages through the rest.</p>{{/moreHistory}}
</div>
{{> footer}}
"""#

    static let dead = #"""
{{> header}}
<h1>Dead letters</h1>
<div class="table-wrap"><table id="dead-types">
  <tr><th>Type</th><th class="num">Dead</th>{{#admin}}<th></th>{{/admin}}</tr>
  {{#types}}
  <tr><td><a href="/ui/dead?type={{type}}">{{type}}</a></td><td class="num">{{count}}</td>
  {{#admin}}<td><form method="post" action="/ui/dead/retry" data-confirm="Retry every dead {{type}} task?"><input type="hidden" name="csrf" value="{{csrf}}"><input type="hidden" name="type" value="{{type}}"><button type="submit">Retry all {{type}}</button></form></td>{{/admin}}</tr>
  {{/types}}
  {{^types}}<tr><td colspan="3" class="muted">No dead tasks among the latest {{countCap}}.</td></tr>{{/types}}
</table></div>
<p class="small muted">Counted among the latest {{countCap}} dead tasks.</p>
<h2>{{#typeName}}Dead {{typeName}} tasks{{/typeName}}{{^typeName}}Latest dead tasks{{/typeName}}</h2>
<div class="table-wrap"><table id="dead-tasks">
  <tr><th>Id</th><th>Type</th><th>Queue</th><th class="num">Attempts</th><th>Died</th><th>Error</th>{{#admin}}<th></th>{{/admin}}</tr>
  {{#tasks}}
  <tr><td><a class="mono" href="/ui/tasks/{{id}}">{{id}}</a></td><td>{{type}}</td><td>{{queue}}</td><td class="num">{{attempts}}/{{maxAttempts}}</td><td class="small">{{finishedAt}}</td><td class="small">{{error}}</td>
  {{#admin}}<td><form method="post" action="/ui/tasks/{{id}}/retry"><input type="hidden" name="csrf" value="{{csrf}}"><input type="hidden" name="back" value="/ui/dead"><button class="secondary" type="submit">Retry</button></form></td>{{/admin}}</tr>
  {{/tasks}}
  {{^tasks}}<tr><td colspan="7" class="muted">None.</td></tr>{{/tasks}}
</table></div>
<div class="pager">{{#nextURL}}<a href="{{nextURL}}">Older →</a>{{/nextURL}}</div>
{{> footer}}
"""#

    static let workflows = #"""
{{> header}}
<h1>Workflows</h1>
<form class="filters card" method="get" action="/ui/workflows">
  <label>Status<select name="status"><option value="">any</option>{{#statuses}}<option value="{{value}}" {{#selected}}selected{{/selected}}>{{value}}</option>{{/statuses}}</select></label>
  <label>Name<input name="name" value="{{name}}"></label>
  <div class="actions"><button type="submit">Filter</button></div>
</form>
<div class="table-wrap"><table id="workflows">
  <tr><th>Id</th><th>Name</th><th>Status</th><th class="num">Nodes</th><th>Created</th><th>Finished</th></tr>
  {{#workflows}}<tr><td><a class="mono" href="/ui/workflows/{{id}}">{{id}}</a></td><td>{{name}}</td><td><span class="status {{statusClass}}">{{status}}</span></td><td class="num">{{nodeCount}}</td><td class="small">{{createdAt}}</td><td class="small">{{finishedAt}}</td></tr>{{/workflows}}
  {{^workflows}}<tr><td colspan="6" class="muted">No workflows.</td></tr>{{/workflows}}
</table></div>
<div class="pager">{{#nextURL}}<a href="{{nextURL}}">Older →</a>{{/nextURL}}</div>
{{> footer}}
"""#

    static let workflow = #"""
{{> header}}
<h1>Workflow <span class="mono">{{id}}</span> · {{name}} <span class="status {{statusClass}}">{{status}}</span></h1>
{{#admin}}<div class="actions" style="margin-bottom:1rem">
  {{#running}}<form method="post" action="/ui/workflows/{{id}}/cancel"><input type="hidden" name="csrf" value="{{csrf}}"><button class="danger" type="submit">Cancel workflow</button></form>{{/running}}
  {{#retryable}}<form method="post" action="/ui/workflows/{{id}}/retry"><input type="hidden" name="csrf" value="{{csrf}}"><button type="submit">Retry what did not succeed</button></form>{{/retryable}}
</div>{{/admin}}
<div id="live" {{#running}}data-refresh="3"{{/running}}>
<p class="small muted">Created {{createdAt}}{{#finishedAt}} · finished {{finishedAt}}{{/finishedAt}} · correlation id <a class="mono" href="/ui/tasks?correlation_id={{correlationID}}">{{correlationID}}</a></p>
<div class="table-wrap"><table id="nodes">
  <tr><th>Node</th><th>Task</th><th>Type</th><th>Status</th><th>Depends on</th><th>If a dependency fails</th><th class="num">Attempts</th><th>Error</th></tr>
  {{#nodes}}<tr><td class="mono">{{key}}</td><td><a class="mono" href="/ui/tasks/{{taskID}}">{{taskID}}</a></td><td>{{type}}</td><td><span class="status {{status}}">{{status}}</span></td><td class="small mono">{{dependsOn}}</td><td class="small">{{policy}}</td><td class="num">{{attempts}}</td><td class="small">{{error}}</td></tr>{{/nodes}}
</table></div>
</div>
{{> footer}}
"""#

    static let schedules = #"""
{{> header}}
<h1>Schedules</h1>
<div class="table-wrap"><table id="schedules">
  <tr><th>Name</th><th>Cron</th><th>Time zone</th><th>Type</th><th>Queue</th><th>Last tick</th><th>Next tick</th><th>Missed ticks</th></tr>
  {{#schedules}}<tr><td>{{name}}</td><td class="mono">{{cron}}</td><td>{{timeZone}}</td><td><a href="/ui/tasks?type={{type}}">{{type}}</a></td><td>{{queue}}</td><td class="small">{{lastTick}}</td><td class="small">{{nextTick}}</td><td>{{missed}}</td></tr>{{/schedules}}
  {{^schedules}}<tr><td colspan="8" class="muted">No periodic schedules in the task-type registry.</td></tr>{{/schedules}}
</table></div>
<h2>Paused queues and types</h2>
<div class="table-wrap"><table id="pauses">
  <tr><th>Queue</th><th>Type</th><th>Since</th><th>By</th>{{#admin}}<th></th>{{/admin}}</tr>
  {{#pauses}}<tr><td>{{queue}}</td><td>{{typeLabel}}</td><td class="small">{{since}}</td><td>{{by}}</td>
  {{#admin}}<td><form method="post" action="{{resumeAction}}"><input type="hidden" name="csrf" value="{{csrf}}"><input type="hidden" name="back" value="/ui/schedules"><button class="secondary" type="submit">Resume</button></form></td>{{/admin}}</tr>{{/pauses}}
  {{^pauses}}<tr><td colspan="5" class="muted">Nothing is paused.</td></tr>{{/pauses}}
</table></div>
{{> footer}}
"""#
}
