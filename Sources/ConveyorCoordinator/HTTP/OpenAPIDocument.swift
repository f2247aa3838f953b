/// The coordinator's HTTP contract (OpenAPI 3.1), served at `/openapi.json` and written to
/// `docs/openapi.json` by `conveyor openapi`. A test checks it is valid, that it lists exactly the
/// router's routes, and real responses against its schemas: change it with the routes.
enum OpenAPIDocument {
    static let yaml = #"""
openapi: 3.1.0
info:
  title: Conveyor coordinator API
  version: "1"
  description: |-
    The HTTP API of a Conveyor coordinator: submit tasks and workflows, read their state, history and
    live progress, search and act on tasks in bulk, redrive dead letters, pause and resume queues and
    types, and read the coordinator's health, status and metrics.

    **Authentication.** Every `/v1` route needs `Authorization: Bearer <token>` (401 without a known
    token). A token has scopes: `submit` (create tasks and workflows, read the ones it created, report
    progress on them), `read` (read every task, workflow, dead letter, queue and schedule) and `admin`
    (everything, plus cancel, retry, redrive, pause and resume). `admin` implies `read` and `submit`;
    `read` does not imply `submit`. A route refused for want of a scope answers 403, naming the scope.
    When authentication is disabled (`CONVEYOR_AUTH_DISABLED`) no token is needed and every scope is
    granted.

    **Errors.** Every error, including an unknown route (404 `not_found`) or a method a route does not
    take (405 `method_not_allowed`), is `{"error": {"code": "…", "message": "…"}}`; an error about one
    element of a batch or one node of a workflow also carries `index`. 503 comes with `Retry-After`.

    **Correlation.** Every request may carry `X-Correlation-ID` (printable ASCII without spaces, quotes
    or backslashes, at most 128 bytes); every response, errors included, echoes it, or a fresh id (32
    hex digits) when the request had none or an unusable one. Tasks and workflows submitted by the
    request record it as their `correlation_id`.
servers:
  - url: http://127.0.0.1:8080
security:
  - bearer: []
tags:
  - name: health
    description: Liveness, readiness, status and metrics (no token needed).
  - name: tasks
    description: Submitting, reading, cancelling, searching and following tasks.
  - name: workflows
    description: Graphs and chains of tasks.
  - name: dead letters
    description: Tasks that died after their last attempt, and redriving them.
  - name: queues
    description: Pausing and resuming queues and task types.
  - name: schedules
    description: Periodic schedules from the registry.
  - name: meta
    description: This document.
paths:
  /health:
    get:
      operationId: getHealth
      tags: [health]
      summary: Whether the process answers
      description: |-
        Scope: none (no token is read). Always 200 while the process serves HTTP; it checks no backend
        (see `/ready`).
      security: []
      parameters:
        - $ref: '#/components/parameters/CorrelationID'
      responses:
        '200':
          description: The process answers.
          headers:
            X-Correlation-ID:
              $ref: '#/components/headers/XCorrelationID'
          content:
            application/json:
              schema:
                $ref: '#/components/schemas/Health'
  /ready:
    get:
      operationId: getReady
      tags: [health]
      summary: Whether Redis and PostgreSQL answer
      description: |-
        Scope: none needed; a token with the `read` scope (or `admin`) gets the backends' error texts.
        Pings Redis and PostgreSQL concurrently, each for at most 2 s. 200 when both answer, else 503
        with `Retry-After` and the same body shape. Without a `read` token (or with an unknown one: this
        route never answers 401) an unhealthy backend is reported as `"unavailable"` rather than its error.
      security:
        - {}
        - bearer: []
      parameters:
        - $ref: '#/components/parameters/CorrelationID'
      responses:
        '200':
          description: Both backends answer.
          headers:
            X-Correlation-ID:
              $ref: '#/components/headers/XCorrelationID'
          content:
            application/json:
              schema:
                $ref: '#/components/schemas/Ready'
        '503':
          description: A backend did not answer in time or answered with an error.
          headers:
            X-Correlation-ID:
              $ref: '#/components/headers/XCorrelationID'
            Retry-After:
              $ref: '#/components/headers/RetryAfter'
          content:
            application/json:
              schema:
                $ref: '#/components/schemas/Ready'
  /status:
    get:
      operationId: getStatus
      tags: [health]
      summary: Queue depths, pauses, limits, in-flight work and live agents
      description: |-
        Scope: none needed; a token with the `read` scope (or `admin`) also gets `agents` (each live
        agent's heartbeat, with its host and pid). Without one (or with an unknown one: this route never
        answers 401) `agents` is left out. Reads Redis: 503 when Redis is unavailable.
      security:
        - {}
        - bearer: []
      parameters:
        - $ref: '#/components/parameters/CorrelationID'
      responses:
        '200':
          description: The coordinator's view of its queues and agents.
          headers:
            X-Correlation-ID:
              $ref: '#/components/headers/XCorrelationID'
          content:
            application/json:
              schema:
                $ref: '#/components/schemas/Status'
        '500':
          $ref: '#/components/responses/InternalError'
        '503':
          $ref: '#/components/responses/ServiceUnavailable'
  /metrics:
    get:
      operationId: getMetrics
      tags: [health]
      summary: Prometheus metrics
      description: |-
        Scope: none (no token is read; it carries counts, never task data). The Prometheus text format,
        gzip-compressed (`Content-Encoding: gzip`) when `Accept-Encoding` allows gzip. Queue gauges are
        sampled from Redis first. 404 when observability is off (`CONVEYOR_OBSERVABILITY_ENABLED=false`).
      security: []
      parameters:
        - $ref: '#/components/parameters/CorrelationID'
        - name: Accept-Encoding
          in: header
          required: false
          description: '`gzip` (among others) to get the body gzip-compressed.'
          schema:
            type: string
      responses:
        '200':
          description: The metrics.
          headers:
            X-Correlation-ID:
              $ref: '#/components/headers/XCorrelationID'
            Content-Encoding:
              description: '`gzip` when the body is compressed; absent otherwise.'
              schema:
                type: string
                enum: [gzip]
          content:
            text/plain; version=0.0.4; charset=utf-8:
              schema:
                type: string
        '404':
          $ref: '#/components/responses/NotFound'
  /openapi.json:
    get:
      operationId: getOpenAPIDocument
      tags: [meta]
      summary: This document, as JSON
      description: |-
        Scope: none (no token is read). The coordinator's HTTP contract, OpenAPI 3.1: this document.
      security: []
      parameters:
        - $ref: '#/components/parameters/CorrelationID'
      responses:
        '200':
          description: The OpenAPI document.
          headers:
            X-Correlation-ID:
              $ref: '#/components/headers/XCorrelationID'
          content:
            application/json:
              schema:
                type: object
                required: [openapi, info, paths]
                properties:
                  openapi:
                    type: string
                  info:
                    type: object
                  paths:
                    type: object
  /v1/tasks:
    post:
      operationId: submitTask
      tags: [tasks]
      summary: Submit one task
      description: |-
        Scope: `submit` (or `admin`); the token's name is recorded as the task's submitter. 201 once the
        task is durable in PostgreSQL: `queued`, or `scheduled` with its `run_at` when `delay` or a future
        `run_at` was given. With an idempotency key (the `Idempotency-Key` header or the body's
        `idempotency_key`, not both) already used, the existing task is returned instead: 200 with
        `Idempotent-Replayed: true`, its current status, and no `run_at`.

        400 codes: `malformed_json`, `missing_field`, `invalid_field` (a field of the wrong type, a bad
        `max_attempts`, `params`, `priority`, `limit_key` or idempotency key), `invalid_request` (both an
        `Idempotency-Key` header and an `idempotency_key` field), `invalid_tags`, `invalid_schedule`.
        422 codes: `unknown_task_type`, `unknown_queue`, `invalid_callback_url`. 413 above
        `CONVEYOR_MAX_BODY_BYTES`. 503 when PostgreSQL or Redis is unavailable (the message says whether
        anything may have been stored: retry with the same idempotency key), or `overloaded` when the
        coordinator sheds the submission (more than `CONVEYOR_SUBMIT_QUEUE_MAX` tasks wait; nothing was
        stored): retry after `Retry-After`.
      parameters:
        - $ref: '#/components/parameters/CorrelationID'
        - $ref: '#/components/parameters/IdempotencyKey'
      requestBody:
        required: true
        content:
          application/json:
            schema:
              $ref: '#/components/schemas/TaskSubmission'
      responses:
        '201':
          description: Stored (and queued, or scheduled).
          headers:
            X-Correlation-ID:
              $ref: '#/components/headers/XCorrelationID'
          content:
            application/json:
              schema:
                $ref: '#/components/schemas/Submitted'
        '200':
          description: An idempotent replay; the task submitted earlier with the same key.
          headers:
            X-Correlation-ID:
              $ref: '#/components/headers/XCorrelationID'
            Idempotent-Replayed:
              $ref: '#/components/headers/IdempotentReplayed'
          content:
            application/json:
              schema:
                $ref: '#/components/schemas/Submitted'
        '400':
          $ref: '#/components/responses/BadRequest'
        '401':
          $ref: '#/components/responses/Unauthorized'
        '403':
          $ref: '#/components/responses/Forbidden'
        '413':
          $ref: '#/components/responses/PayloadTooLarge'
        '422':
          $ref: '#/components/responses/Unprocessable'
        '500':
          $ref: '#/components/responses/InternalError'
        '503':
          $ref: '#/components/responses/ServiceUnavailable'
    get:
      operationId: searchTasks
      tags: [tasks]
      summary: Search tasks, newest first
      description: |-
        Scope: `read` (or `admin`) searches every task; a `submit`-only token finds only the tasks it
        submitted. Filters combine with AND; `status` and `tag` may repeat (statuses are ORed, tags
        ANDed). Every other filter may appear once (twice is 400). A query parameter that is not a
        filter, `limit` or `cursor` is a 400 `invalid_filter`, so a misspelt filter never widens a
        search. Rows are summaries (no `params`, `result` or `progress`; `error` cut to 300 characters).

        Pages are keyset pages over task ids, newest (highest id) first: pass a page's `next_cursor` as
        `cursor` to get the tasks after it. A page may hold fewer than `limit` tasks and still have a
        next one (a page examines a bounded number of candidates); `next_cursor` is null at the end.

        400 codes: `invalid_filter` (unknown name, repeated name, bad status, tag, time or empty value),
        `invalid_field` (`limit` or `cursor`).
      parameters:
        - $ref: '#/components/parameters/CorrelationID'
        - name: status
          in: query
          required: false
          description: |-
            Task statuses, comma-separated (`failed,dead`), and/or repeated (`status=failed&status=dead`):
            any of scheduled, waiting, queued, running, succeeded, failed, retrying, dead, cancelled, skipped.
          style: form
          explode: true
          schema:
            type: array
            items:
              type: string
              examples: ['failed,dead']
        - name: type
          in: query
          required: false
          description: The task type (exact).
          schema:
            type: string
            minLength: 1
        - name: queue
          in: query
          required: false
          description: The queue (exact).
          schema:
            type: string
            minLength: 1
        - name: tag
          in: query
          required: false
          description: '`key:value` (split at the first colon); repeat for several, at most 8. A task must carry all of them.'
          style: form
          explode: true
          schema:
            type: array
            maxItems: 8
            items:
              type: string
              examples: ['customer:acme']
        - name: correlation_id
          in: query
          required: false
          description: The tasks submitted with this correlation id.
          schema:
            type: string
            minLength: 1
        - name: idempotency_key
          in: query
          required: false
          description: The task with this idempotency key.
          schema:
            type: string
            minLength: 1
        - name: created_after
          in: query
          required: false
          description: Created at or after this RFC 3339 time.
          schema:
            type: string
            format: date-time
        - name: created_before
          in: query
          required: false
          description: Created before this RFC 3339 time.
          schema:
            type: string
            format: date-time
        - name: finished_after
          in: query
          required: false
          description: Finished at or after this RFC 3339 time.
          schema:
            type: string
            format: date-time
        - name: finished_before
          in: query
          required: false
          description: Finished before this RFC 3339 time.
          schema:
            type: string
            format: date-time
        - name: error
          in: query
          required: false
          description: Text the task's error contains (at most 200 characters).
          schema:
            type: string
            minLength: 1
            maxLength: 200
        - name: limit
          in: query
          required: false
          description: Most tasks per page, 1–500 (default 50).
          schema:
            type: integer
            minimum: 1
            maximum: 500
            default: 50
        - name: cursor
          in: query
          required: false
          description: |-
            The `next_cursor` of the previous page (a task id): the page holds tasks with lower ids
            (older) that match the same filters. Omit for the first page.
          schema:
            type: string
            pattern: '^[0-9]+$'
      responses:
        '200':
          description: A page of matching tasks.
          headers:
            X-Correlation-ID:
              $ref: '#/components/headers/XCorrelationID'
          content:
            application/json:
              schema:
                $ref: '#/components/schemas/TaskPage'
        '400':
          $ref: '#/components/responses/BadRequest'
        '401':
          $ref: '#/components/responses/Unauthorized'
        '403':
          $ref: '#/components/responses/Forbidden'
        '500':
          $ref: '#/components/responses/InternalError'
        '503':
          $ref: '#/components/responses/ServiceUnavailable'
  /v1/tasks/batch:
    post:
      operationId: submitTaskBatch
      tags: [tasks]
      summary: Submit up to 1,000 tasks at once
      description: |-
        Scope: `submit` (or `admin`). All or none: the first invalid element rejects the batch, and the
        error's `index` names it. The reply lists the tasks in the order given. With an `Idempotency-Key`
        header, element i gets the key `<header>:<i>` unless it has its own `idempotency_key`, so a
        retried batch returns the same tasks. 201 when at least one task is new; 200 with
        `Idempotent-Replayed: true` when every element was a replay.

        400 codes: `malformed_json`, `missing_field`, `invalid_field`, `invalid_tags`, `invalid_schedule`,
        `empty_batch`, `batch_too_large`. 422 codes: `unknown_task_type`, `unknown_queue`,
        `invalid_callback_url`. 413 above `CONVEYOR_MAX_BODY_BYTES`.
      parameters:
        - $ref: '#/components/parameters/CorrelationID'
        - $ref: '#/components/parameters/IdempotencyKey'
      requestBody:
        required: true
        content:
          application/json:
            schema:
              $ref: '#/components/schemas/BatchSubmission'
      responses:
        '201':
          description: Stored; at least one task is new.
          headers:
            X-Correlation-ID:
              $ref: '#/components/headers/XCorrelationID'
          content:
            application/json:
              schema:
                $ref: '#/components/schemas/BatchSubmitted'
        '200':
          description: Every element was an idempotent replay.
          headers:
            X-Correlation-ID:
              $ref: '#/components/headers/XCorrelationID'
            Idempotent-Replayed:
              $ref: '#/components/headers/IdempotentReplayed'
          content:
            application/json:
              schema:
                $ref: '#/components/schemas/BatchSubmitted'
        '400':
          $ref: '#/components/responses/BadRequest'
        '401':
          $ref: '#/components/responses/Unauthorized'
        '403':
          $ref: '#/components/responses/Forbidden'
        '413':
          $ref: '#/components/responses/PayloadTooLarge'
        '422':
          $ref: '#/components/responses/Unprocessable'
        '500':
          $ref: '#/components/responses/InternalError'
        '503':
          $ref: '#/components/responses/ServiceUnavailable'
  /v1/tasks/cancel:
    post:
      operationId: cancelTasks
      tags: [tasks]
      summary: Cancel the tasks a filter matches
      description: |-
        Scope: `admin`. Cancels up to `limit` unfinished tasks matching the filters, newest first, as a
        cancel of each would (running ones are told to stop). The body takes the search's filters as
        members; at least one filter is needed (`filter_required`). The statuses are narrowed to the
        unfinished ones (scheduled, waiting, queued, running, retrying); statuses that leave none are a
        400 `invalid_filter`. `more` is true when it stopped at `limit` (or after examining its bounded
        number of pages) with more tasks possibly left: call again.

        400 codes: `invalid_json`, `invalid_filter`, `invalid_field` (`limit`), `filter_required`.
      parameters:
        - $ref: '#/components/parameters/CorrelationID'
      requestBody:
        required: true
        content:
          application/json:
            schema:
              $ref: '#/components/schemas/BulkFilter'
      responses:
        '200':
          description: How many tasks were cancelled.
          headers:
            X-Correlation-ID:
              $ref: '#/components/headers/XCorrelationID'
          content:
            application/json:
              schema:
                $ref: '#/components/schemas/BulkCancelled'
        '400':
          $ref: '#/components/responses/BadRequest'
        '401':
          $ref: '#/components/responses/Unauthorized'
        '403':
          $ref: '#/components/responses/Forbidden'
        '413':
          $ref: '#/components/responses/PayloadTooLarge'
        '500':
          $ref: '#/components/responses/InternalError'
        '503':
          $ref: '#/components/responses/ServiceUnavailable'
  /v1/tasks/retry:
    post:
      operationId: retryTasks
      tags: [tasks]
      summary: Retry the failed and dead tasks a filter matches
      description: |-
        Scope: `admin`. Retries up to `limit` matching tasks, newest first: a `dead` task is redriven
        with a fresh budget of attempts; a `failed` task (a workflow node that did not run) by retrying
        its workflow, once per workflow. The statuses are narrowed to `failed` and `dead`; statuses that
        leave none are a 400 `invalid_filter`. At least one filter is needed (`filter_required`). `more`
        is true when it stopped at `limit` (or after examining its bounded number of pages) with more
        tasks possibly left.

        400 codes: `invalid_json`, `invalid_filter`, `invalid_field` (`limit`), `filter_required`.
      parameters:
        - $ref: '#/components/parameters/CorrelationID'
      requestBody:
        required: true
        content:
          application/json:
            schema:
              $ref: '#/components/schemas/BulkFilter'
      responses:
        '200':
          description: How many tasks were queued again.
          headers:
            X-Correlation-ID:
              $ref: '#/components/headers/XCorrelationID'
          content:
            application/json:
              schema:
                $ref: '#/components/schemas/BulkRetried'
        '400':
          $ref: '#/components/responses/BadRequest'
        '401':
          $ref: '#/components/responses/Unauthorized'
        '403':
          $ref: '#/components/responses/Forbidden'
        '413':
          $ref: '#/components/responses/PayloadTooLarge'
        '500':
          $ref: '#/components/responses/InternalError'
        '503':
          $ref: '#/components/responses/ServiceUnavailable'
  /v1/tasks/{id}:
    get:
      operationId: getTask
      tags: [tasks]
      summary: One task (optionally waiting until it finishes)
      description: |-
        Scope: `read` (or `admin`) reads any task; a `submit`-only token reads the tasks it submitted
        (another's is 404). With `wait`, a long-poll: answers as soon as the task is terminal, or with
        its current state when the wait runs out (still 200: look at `status`).

        400 code: `invalid_wait`. 404 `not_found` for an unknown id (or one that is not a positive
        integer).
      parameters:
        - $ref: '#/components/parameters/CorrelationID'
        - $ref: '#/components/parameters/TaskID'
        - name: wait
          in: query
          required: false
          description: |-
            How long to wait for the task to finish, at most 60 s: a duration such as `30s`, `500ms`,
            `1m` or a number of seconds (`1.5`).
          schema:
            type: string
            examples: ['30s']
      responses:
        '200':
          description: The task.
          headers:
            X-Correlation-ID:
              $ref: '#/components/headers/XCorrelationID'
          content:
            application/json:
              schema:
                $ref: '#/components/schemas/Task'
        '400':
          $ref: '#/components/responses/BadRequest'
        '401':
          $ref: '#/components/responses/Unauthorized'
        '403':
          $ref: '#/components/responses/Forbidden'
        '404':
          $ref: '#/components/responses/NotFound'
        '500':
          $ref: '#/components/responses/InternalError'
        '503':
          $ref: '#/components/responses/ServiceUnavailable'
  /v1/tasks/{id}/cancel:
    post:
      operationId: cancelTask
      tags: [tasks]
      summary: Cancel one task
      description: |-
        Scope: `admin`. A scheduled, waiting or queued task never runs; a running one is told to stop by
        its agent. No request body is read. 404 for an unknown id; 409 `already_finished` when the task
        is already terminal (or finished before it could be cancelled).
      parameters:
        - $ref: '#/components/parameters/CorrelationID'
        - $ref: '#/components/parameters/TaskID'
      responses:
        '200':
          description: Cancelled.
          headers:
            X-Correlation-ID:
              $ref: '#/components/headers/XCorrelationID'
          content:
            application/json:
              schema:
                $ref: '#/components/schemas/TaskCancelled'
        '401':
          $ref: '#/components/responses/Unauthorized'
        '403':
          $ref: '#/components/responses/Forbidden'
        '404':
          $ref: '#/components/responses/NotFound'
        '409':
          $ref: '#/components/responses/Conflict'
        '500':
          $ref: '#/components/responses/InternalError'
        '503':
          $ref: '#/components/responses/ServiceUnavailable'
  /v1/tasks/{id}/events:
    get:
      operationId: listTaskEvents
      tags: [tasks]
      summary: A task's history, oldest first
      description: |-
        Scope: `read` (or `admin`) for any task; a `submit`-only token for the tasks it submitted
        (another's is 404). The timeline: `queued` (or `scheduled`), then per attempt `dispatched`,
        `running`, `progress`, and its end (`retrying`, `succeeded`, `failed`, `dead`, `cancelled`,
        `skipped`); `redriven` after a redrive; `webhook` for each try of a completion webhook.

        Pages are keyset pages over the history's order (time, event id): pass `next_cursor` back as
        `cursor` for the next page; it is null at the end. The first page (no `cursor`) starts with the
        task's `queued`/`scheduled` item. A page never splits the items of one recorded step (one step
        gives one to three items), so it may hold a few items more or fewer than `limit`.

        400 codes: `invalid_limit`, `invalid_cursor`.
      parameters:
        - $ref: '#/components/parameters/CorrelationID'
        - $ref: '#/components/parameters/TaskID'
        - name: limit
          in: query
          required: false
          description: Recorded steps per page, 1–1,000 (default 100).
          schema:
            type: integer
            minimum: 1
            maximum: 1000
            default: 100
        - name: cursor
          in: query
          required: false
          description: |-
            The `next_cursor` of the previous page (opaque, `<ms>.<event id>`): the page holds the steps
            recorded after it. Omit (or leave empty) for the first page.
          schema:
            type: string
      responses:
        '200':
          description: A page of the history.
          headers:
            X-Correlation-ID:
              $ref: '#/components/headers/XCorrelationID'
          content:
            application/json:
              schema:
                $ref: '#/components/schemas/TaskEventPage'
        '400':
          $ref: '#/components/responses/BadRequest'
        '401':
          $ref: '#/components/responses/Unauthorized'
        '403':
          $ref: '#/components/responses/Forbidden'
        '404':
          $ref: '#/components/responses/NotFound'
        '500':
          $ref: '#/components/responses/InternalError'
        '503':
          $ref: '#/components/responses/ServiceUnavailable'
  /v1/tasks/{id}/stream:
    get:
      operationId: streamTask
      tags: [tasks]
      summary: A task's history, live (Server-Sent Events)
      description: |-
        Scope: `read` (or `admin`) for any task; a `submit`-only token for the tasks it submitted
        (another's is 404). `text/event-stream`: first `retry: 1000`, then the same items as
        `/events`, one SSE event each (`id:` the stream's position, `event:` the item's `kind`, `data:`
        the item's JSON on one line), first everything so far, then each new step as it is recorded,
        ending after the terminal one. A comment line (`: keep-alive`) every 15 s keeps an idle stream
        open.

        Reconnect with `Last-Event-ID` (or `?after=`) to resume after that position. When the task has
        finished and nothing is left after it, the answer is 204, which tells an `EventSource` to stop.

        400 code: `invalid_cursor` (a `Last-Event-ID`/`after` this API did not give).
      parameters:
        - $ref: '#/components/parameters/CorrelationID'
        - $ref: '#/components/parameters/TaskID'
        - name: Last-Event-ID
          in: header
          required: false
          description: The `id` of the last event received; the stream resumes after it. Takes precedence over `after`.
          schema:
            type: string
        - name: after
          in: query
          required: false
          description: The same as `Last-Event-ID`, for clients that cannot set headers.
          schema:
            type: string
      responses:
        '200':
          description: The event stream.
          headers:
            X-Correlation-ID:
              $ref: '#/components/headers/XCorrelationID'
            Cache-Control:
              description: Always `no-cache`.
              schema:
                type: string
                const: no-cache
            X-Accel-Buffering:
              description: Always `no` (tells proxies not to buffer).
              schema:
                type: string
                const: 'no'
          content:
            text/event-stream:
              schema:
                type: string
                description: |-
                  Server-Sent Events. Each event: `id: <position>`, `event: <kind>`, `data: <TaskEvent JSON>`.
                examples:
                  - "retry: 1000\n\nid: 0.\nevent: queued\ndata: {\"id\":\"0.\",\"kind\":\"queued\",\"at\":\"2026-11-30T03:17:39.645Z\",\"attempt\":0}\n\n"
        '204':
          description: The task has finished and the client has seen everything after its `Last-Event-ID`.
          headers:
            X-Correlation-ID:
              $ref: '#/components/headers/XCorrelationID'
        '400':
          $ref: '#/components/responses/BadRequest'
        '401':
          $ref: '#/components/responses/Unauthorized'
        '403':
          $ref: '#/components/responses/Forbidden'
        '404':
          $ref: '#/components/responses/NotFound'
        '500':
          $ref: '#/components/responses/InternalError'
        '503':
          $ref: '#/components/responses/ServiceUnavailable'
  /v1/tasks/{id}/progress:
    post:
      operationId: reportTaskProgress
      tags: [tasks]
      summary: Report progress on a task
      description: |-
        Scope: `submit` for the tasks the token submitted (another's is 404), `admin` for any. For
        workers that are not agents: the report is throttled like an agent's and relayed through the
        events stream; it never changes the task's status. 202 once accepted.

        The body is at most 16 KiB (413 above). 400 codes: `malformed_json`, `invalid_field`
        (`attempt`), `invalid_progress` (no field, an unknown field, a value out of range). 409 codes:
        `already_finished` (the task is terminal), `stale_attempt` (not the current attempt or the next
        one, or past `max_attempts`).
      parameters:
        - $ref: '#/components/parameters/CorrelationID'
        - $ref: '#/components/parameters/TaskID'
      requestBody:
        required: true
        content:
          application/json:
            schema:
              $ref: '#/components/schemas/ProgressReport'
      responses:
        '202':
          description: Accepted.
          headers:
            X-Correlation-ID:
              $ref: '#/components/headers/XCorrelationID'
          content:
            application/json:
              schema:
                $ref: '#/components/schemas/ProgressAccepted'
        '400':
          $ref: '#/components/responses/BadRequest'
        '401':
          $ref: '#/components/responses/Unauthorized'
        '403':
          $ref: '#/components/responses/Forbidden'
        '404':
          $ref: '#/components/responses/NotFound'
        '409':
          $ref: '#/components/responses/Conflict'
        '413':
          $ref: '#/components/responses/PayloadTooLarge'
        '500':
          $ref: '#/components/responses/InternalError'
        '503':
          $ref: '#/components/responses/ServiceUnavailable'
  /v1/workflows:
    post:
      operationId: submitWorkflow
      tags: [workflows]
      summary: Submit a workflow (a graph or a chain of tasks)
      description: |-
        Scope: `submit` (or `admin`). Checks the whole workflow before anything is stored (every node's
        task, at most 10,000 nodes, keys unique, every dependency a node, no cycle; each error names the
        node, with its position as `index`), then stores it in one transaction: 201 with the workflow's
        id and each node's task id. An `Idempotency-Key` header already used returns the earlier
        workflow: 200 with `Idempotent-Replayed: true`.

        400 codes: `malformed_json`, `missing_field`, `invalid_field`, `invalid_tags`,
        `invalid_workflow` (neither or both of `nodes` and `chain`, a bad graph, a node with a schedule or
        an idempotency key of its own), `workflow_too_large`. 422 codes: `unknown_task_type`,
        `unknown_queue`, `invalid_callback_url`. 413 above `CONVEYOR_MAX_BODY_BYTES`.
      parameters:
        - $ref: '#/components/parameters/CorrelationID'
        - $ref: '#/components/parameters/IdempotencyKey'
      requestBody:
        required: true
        content:
          application/json:
            schema:
              $ref: '#/components/schemas/WorkflowSubmission'
      responses:
        '201':
          description: Stored; its roots are queued.
          headers:
            X-Correlation-ID:
              $ref: '#/components/headers/XCorrelationID'
          content:
            application/json:
              schema:
                $ref: '#/components/schemas/WorkflowSubmitted'
        '200':
          description: An idempotent replay; the workflow submitted earlier with the same key.
          headers:
            X-Correlation-ID:
              $ref: '#/components/headers/XCorrelationID'
            Idempotent-Replayed:
              $ref: '#/components/headers/IdempotentReplayed'
          content:
            application/json:
              schema:
                $ref: '#/components/schemas/WorkflowSubmitted'
        '400':
          $ref: '#/components/responses/BadRequest'
        '401':
          $ref: '#/components/responses/Unauthorized'
        '403':
          $ref: '#/components/responses/Forbidden'
        '413':
          $ref: '#/components/responses/PayloadTooLarge'
        '422':
          $ref: '#/components/responses/Unprocessable'
        '500':
          $ref: '#/components/responses/InternalError'
        '503':
          $ref: '#/components/responses/ServiceUnavailable'
    get:
      operationId: listWorkflows
      tags: [workflows]
      summary: List workflows, newest first
      description: |-
        Scope: `read` (or `admin`). Pages are keyset pages over workflow ids, newest (highest id) first:
        pass `next_cursor` back as `cursor`. `next_cursor` is set whenever a page is full, so the last
        page may be empty; it is null after a page with fewer than `limit` workflows.

        400 code: `invalid_field` (`status`, `limit` or `cursor`).
      parameters:
        - $ref: '#/components/parameters/CorrelationID'
        - name: status
          in: query
          required: false
          description: Only workflows with this status.
          schema:
            $ref: '#/components/schemas/WorkflowStatus'
        - name: name
          in: query
          required: false
          description: Only workflows with this name (exact).
          schema:
            type: string
        - name: limit
          in: query
          required: false
          description: Most workflows per page, 1–500 (default 50).
          schema:
            type: integer
            minimum: 1
            maximum: 500
            default: 50
        - name: cursor
          in: query
          required: false
          description: The `next_cursor` of the previous page (a workflow id); the page holds older workflows.
          schema:
            type: string
            pattern: '^[0-9]+$'
      responses:
        '200':
          description: A page of workflows.
          headers:
            X-Correlation-ID:
              $ref: '#/components/headers/XCorrelationID'
          content:
            application/json:
              schema:
                $ref: '#/components/schemas/WorkflowPage'
        '400':
          $ref: '#/components/responses/BadRequest'
        '401':
          $ref: '#/components/responses/Unauthorized'
        '403':
          $ref: '#/components/responses/Forbidden'
        '500':
          $ref: '#/components/responses/InternalError'
        '503':
          $ref: '#/components/responses/ServiceUnavailable'
  /v1/workflows/{id}:
    get:
      operationId: getWorkflow
      tags: [workflows]
      summary: One workflow with its nodes
      description: |-
        Scope: `read` (or `admin`) for any workflow; a `submit`-only token for the workflows it submitted
        (another's is 404). The workflow, its node counts by status and every node in submission order.
      parameters:
        - $ref: '#/components/parameters/CorrelationID'
        - $ref: '#/components/parameters/WorkflowID'
      responses:
        '200':
          description: The workflow.
          headers:
            X-Correlation-ID:
              $ref: '#/components/headers/XCorrelationID'
          content:
            application/json:
              schema:
                $ref: '#/components/schemas/Workflow'
        '401':
          $ref: '#/components/responses/Unauthorized'
        '403':
          $ref: '#/components/responses/Forbidden'
        '404':
          $ref: '#/components/responses/NotFound'
        '500':
          $ref: '#/components/responses/InternalError'
        '503':
          $ref: '#/components/responses/ServiceUnavailable'
  /v1/workflows/{id}/cancel:
    post:
      operationId: cancelWorkflow
      tags: [workflows]
      summary: Cancel a running workflow
      description: |-
        Scope: `admin`. Cancels every node that has not ended (running ones are told to stop) and the
        workflow. No request body is read. 404 for an unknown id; 409 `already_finished` when the
        workflow is not running.
      parameters:
        - $ref: '#/components/parameters/CorrelationID'
        - $ref: '#/components/parameters/WorkflowID'
      responses:
        '200':
          description: Cancelled.
          headers:
            X-Correlation-ID:
              $ref: '#/components/headers/XCorrelationID'
          content:
            application/json:
              schema:
                $ref: '#/components/schemas/WorkflowCancelled'
        '401':
          $ref: '#/components/responses/Unauthorized'
        '403':
          $ref: '#/components/responses/Forbidden'
        '404':
          $ref: '#/components/responses/NotFound'
        '409':
          $ref: '#/components/responses/Conflict'
        '500':
          $ref: '#/components/responses/InternalError'
        '503':
          $ref: '#/components/responses/ServiceUnavailable'
  /v1/workflows/{id}/retry:
    post:
      operationId: retryWorkflow
      tags: [workflows]
      summary: Retry a failed or cancelled workflow
      description: |-
        Scope: `admin`. Runs the failed, dead, cancelled and skipped nodes again; succeeded nodes keep
        their results. The workflow is `running` again. No request body is read. 404 for an unknown id;
        409 codes: `workflow_running` (cancel it first, or wait), `nothing_to_retry` (it succeeded),
        `already_finished`, `expiring` (it ended so long ago that retention is about to remove it).
      parameters:
        - $ref: '#/components/parameters/CorrelationID'
        - $ref: '#/components/parameters/WorkflowID'
      responses:
        '200':
          description: Retried.
          headers:
            X-Correlation-ID:
              $ref: '#/components/headers/XCorrelationID'
          content:
            application/json:
              schema:
                $ref: '#/components/schemas/WorkflowRetried'
        '401':
          $ref: '#/components/responses/Unauthorized'
        '403':
          $ref: '#/components/responses/Forbidden'
        '404':
          $ref: '#/components/responses/NotFound'
        '409':
          $ref: '#/components/responses/Conflict'
        '500':
          $ref: '#/components/responses/InternalError'
        '503':
          $ref: '#/components/responses/ServiceUnavailable'
  /v1/dead:
    get:
      operationId: listDeadLetters
      tags: [dead letters]
      summary: List dead letters
      description: |-
        Scope: `read` (or `admin`). The dead letters kept in Redis (the newest `CONVEYOR_DEAD_LETTER_LIMIT`
        per queue), queue by queue in the registry's order, oldest first within a queue. Pages are keyset
        pages over (queue, dead-stream entry): pass `next_cursor` back as `cursor`. `next_cursor` is set
        whenever a page is full, so the last page may be empty; it is null after a page with fewer than
        `limit` letters.

        400 code: `invalid_field` (`limit`).
      parameters:
        - $ref: '#/components/parameters/CorrelationID'
        - name: type
          in: query
          required: false
          description: Only dead letters of this task type.
          schema:
            type: string
        - name: limit
          in: query
          required: false
          description: Most dead letters per page, 1–1,000 (default 100).
          schema:
            type: integer
            minimum: 1
            maximum: 1000
            default: 100
        - name: cursor
          in: query
          required: false
          description: |-
            The `next_cursor` of the previous page (opaque, `<queue>/<entry id>`); the page holds the
            letters after it. Not checked: a value without `/` starts from the beginning, an unknown
            queue gives an empty page.
          schema:
            type: string
      responses:
        '200':
          description: A page of dead letters.
          headers:
            X-Correlation-ID:
              $ref: '#/components/headers/XCorrelationID'
          content:
            application/json:
              schema:
                $ref: '#/components/schemas/DeadLetterPage'
        '400':
          $ref: '#/components/responses/BadRequest'
        '401':
          $ref: '#/components/responses/Unauthorized'
        '403':
          $ref: '#/components/responses/Forbidden'
        '500':
          $ref: '#/components/responses/InternalError'
        '503':
          $ref: '#/components/responses/ServiceUnavailable'
  /v1/dead/retry:
    post:
      operationId: retryDeadLetters
      tags: [dead letters]
      summary: Redrive every dead task (of one type)
      description: |-
        Scope: `admin`. Redrives every dead task still redrivable, of one type when `type` is given,
        paging through PostgreSQL (so letters trimmed from Redis are included). No request body is read.
      parameters:
        - $ref: '#/components/parameters/CorrelationID'
        - name: type
          in: query
          required: false
          description: Only dead tasks of this type (default every type).
          schema:
            type: string
      responses:
        '200':
          description: How many tasks were redriven.
          headers:
            X-Correlation-ID:
              $ref: '#/components/headers/XCorrelationID'
          content:
            application/json:
              schema:
                $ref: '#/components/schemas/Redriven'
        '401':
          $ref: '#/components/responses/Unauthorized'
        '403':
          $ref: '#/components/responses/Forbidden'
        '500':
          $ref: '#/components/responses/InternalError'
        '503':
          $ref: '#/components/responses/ServiceUnavailable'
  /v1/dead/{id}/retry:
    post:
      operationId: retryDeadLetter
      tags: [dead letters]
      summary: Redrive one dead task
      description: |-
        Scope: `admin`. Moves the dead task back to `queued` with a fresh budget of attempts, keeping its
        id and history; a workflow node's workflow runs again. No request body is read. 404 for an
        unknown id; 409 codes: `not_dead`, `expiring` (it died so long ago that retention is about to
        remove it).
      parameters:
        - $ref: '#/components/parameters/CorrelationID'
        - $ref: '#/components/parameters/TaskID'
      responses:
        '200':
          description: Redriven.
          headers:
            X-Correlation-ID:
              $ref: '#/components/headers/XCorrelationID'
          content:
            application/json:
              schema:
                $ref: '#/components/schemas/RedrivenTask'
        '401':
          $ref: '#/components/responses/Unauthorized'
        '403':
          $ref: '#/components/responses/Forbidden'
        '404':
          $ref: '#/components/responses/NotFound'
        '409':
          $ref: '#/components/responses/Conflict'
        '500':
          $ref: '#/components/responses/InternalError'
        '503':
          $ref: '#/components/responses/ServiceUnavailable'
  /v1/queues:
    get:
      operationId: listQueues
      tags: [queues]
      summary: Every queue with its types and what is paused
      description: |-
        Scope: `read` (or `admin`). The registry's queues, in its order, each with its types and what
        of it is paused.
      parameters:
        - $ref: '#/components/parameters/CorrelationID'
      responses:
        '200':
          description: The queues.
          headers:
            X-Correlation-ID:
              $ref: '#/components/headers/XCorrelationID'
          content:
            application/json:
              schema:
                $ref: '#/components/schemas/QueueList'
        '401':
          $ref: '#/components/responses/Unauthorized'
        '403':
          $ref: '#/components/responses/Forbidden'
        '500':
          $ref: '#/components/responses/InternalError'
        '503':
          $ref: '#/components/responses/ServiceUnavailable'
  /v1/queues/{queue}/pause:
    post:
      operationId: pauseQueue
      tags: [queues]
      summary: Pause a queue
      description: |-
        Scope: `admin`. Nothing new starts from the queue; attempts already running finish. Pausing
        twice keeps the first time. Kept in PostgreSQL. No request body is read. 404 for a queue the
        registry does not know (checked before the scope).
      parameters:
        - $ref: '#/components/parameters/CorrelationID'
        - $ref: '#/components/parameters/QueueName'
      responses:
        '200':
          description: Paused.
          headers:
            X-Correlation-ID:
              $ref: '#/components/headers/XCorrelationID'
          content:
            application/json:
              schema:
                $ref: '#/components/schemas/Paused'
        '401':
          $ref: '#/components/responses/Unauthorized'
        '403':
          $ref: '#/components/responses/Forbidden'
        '404':
          $ref: '#/components/responses/NotFound'
        '500':
          $ref: '#/components/responses/InternalError'
        '503':
          $ref: '#/components/responses/ServiceUnavailable'
  /v1/queues/{queue}/resume:
    post:
      operationId: resumeQueue
      tags: [queues]
      summary: Resume a queue
      description: |-
        Scope: `admin`. Puts back what the pause set aside, in order. Resuming a queue that is not paused
        is a 200 with `"was_paused": false`. No request body is read. 404 for a queue the registry does
        not know (checked before the scope).
      parameters:
        - $ref: '#/components/parameters/CorrelationID'
        - $ref: '#/components/parameters/QueueName'
      responses:
        '200':
          description: Resumed.
          headers:
            X-Correlation-ID:
              $ref: '#/components/headers/XCorrelationID'
          content:
            application/json:
              schema:
                $ref: '#/components/schemas/Resumed'
        '401':
          $ref: '#/components/responses/Unauthorized'
        '403':
          $ref: '#/components/responses/Forbidden'
        '404':
          $ref: '#/components/responses/NotFound'
        '500':
          $ref: '#/components/responses/InternalError'
        '503':
          $ref: '#/components/responses/ServiceUnavailable'
  /v1/types/{type}/pause:
    post:
      operationId: pauseType
      tags: [queues]
      summary: Pause a task type
      description: |-
        Scope: `admin`. Nothing new of the type starts (its tasks are set aside as agents meet them);
        attempts already running finish. Pausing twice keeps the first time. No request body is read.
        404 for a type the registry does not know (checked before the scope).
      parameters:
        - $ref: '#/components/parameters/CorrelationID'
        - $ref: '#/components/parameters/TypeName'
      responses:
        '200':
          description: Paused.
          headers:
            X-Correlation-ID:
              $ref: '#/components/headers/XCorrelationID'
          content:
            application/json:
              schema:
                $ref: '#/components/schemas/Paused'
        '401':
          $ref: '#/components/responses/Unauthorized'
        '403':
          $ref: '#/components/responses/Forbidden'
        '404':
          $ref: '#/components/responses/NotFound'
        '500':
          $ref: '#/components/responses/InternalError'
        '503':
          $ref: '#/components/responses/ServiceUnavailable'
  /v1/types/{type}/resume:
    post:
      operationId: resumeType
      tags: [queues]
      summary: Resume a task type
      description: |-
        Scope: `admin`. Puts back the tasks the pause set aside, in order. Resuming a type that is not
        paused is a 200 with `"was_paused": false`. No request body is read. 404 for a type the registry
        does not know (checked before the scope).
      parameters:
        - $ref: '#/components/parameters/CorrelationID'
        - $ref: '#/components/parameters/TypeName'
      responses:
        '200':
          description: Resumed.
          headers:
            X-Correlation-ID:
              $ref: '#/components/headers/XCorrelationID'
          content:
            application/json:
              schema:
                $ref: '#/components/schemas/Resumed'
        '401':
          $ref: '#/components/responses/Unauthorized'
        '403':
          $ref: '#/components/responses/Forbidden'
        '404':
          $ref: '#/components/responses/NotFound'
        '500':
          $ref: '#/components/responses/InternalError'
        '503':
          $ref: '#/components/responses/ServiceUnavailable'
  /v1/schedules:
    get:
      operationId: listSchedules
      tags: [schedules]
      summary: The periodic schedules, with their last and next ticks
      description: |-
        Scope: `read` (or `admin`). The registry's schedules, in its order, each with its last enqueued
        tick and its next.
      parameters:
        - $ref: '#/components/parameters/CorrelationID'
      responses:
        '200':
          description: The schedules.
          headers:
            X-Correlation-ID:
              $ref: '#/components/headers/XCorrelationID'
          content:
            application/json:
              schema:
                $ref: '#/components/schemas/ScheduleList'
        '401':
          $ref: '#/components/responses/Unauthorized'
        '403':
          $ref: '#/components/responses/Forbidden'
        '500':
          $ref: '#/components/responses/InternalError'
        '503':
          $ref: '#/components/responses/ServiceUnavailable'
components:
  securitySchemes:
    bearer:
      type: http
      scheme: bearer
      description: |-
        `Authorization: Bearer <secret>` with a token from `CONVEYOR_API_TOKENS` or
        `CONVEYOR_API_TOKENS_FILE` (entries `name:scope[+scope…]:secret`; scopes `submit`, `read`,
        `admin`). Under `/v1` a missing or unknown token is 401; each route then needs the scope its
        description names (403 otherwise). With `CONVEYOR_AUTH_DISABLED` no token is checked and every
        scope is granted.
  parameters:
    CorrelationID:
      name: X-Correlation-ID
      in: header
      required: false
      description: |-
        Ties the request to its tasks, log lines and events. Used as given when it is 1–128 bytes of
        printable ASCII without spaces, `"` or `\`; otherwise (or when absent) the coordinator makes
        one (32 hex digits: the time in ms, then 80 random bits). Echoed on every response; recorded as the `correlation_id` of the tasks
        and workflows the request submits.
      schema:
        type: string
        maxLength: 128
        examples: ['order-7']
    IdempotencyKey:
      name: Idempotency-Key
      in: header
      required: false
      description: |-
        1–255 bytes without control characters (400 `invalid_field` otherwise). A key seen before returns
        what it created then (200, `Idempotent-Replayed: true`) instead of creating anything. For a
        batch, element i gets `<key>:<i>` unless it has its own `idempotency_key`.
      schema:
        type: string
        minLength: 1
        maxLength: 255
    TaskID:
      name: id
      in: path
      required: true
      description: A task id (a positive integer; anything else is 404 `not_found`).
      schema:
        type: integer
        format: int64
        minimum: 1
    WorkflowID:
      name: id
      in: path
      required: true
      description: A workflow id (a positive integer; anything else is 404 `not_found`).
      schema:
        type: integer
        format: int64
        minimum: 1
    QueueName:
      name: queue
      in: path
      required: true
      description: A queue the registry declares (404 `not_found` otherwise).
      schema:
        type: string
    TypeName:
      name: type
      in: path
      required: true
      description: A task type the registry declares (404 `not_found` otherwise).
      schema:
        type: string
  headers:
    XCorrelationID:
      description: The request's correlation id, or the one the coordinator made for it.
      required: true
      schema:
        type: string
    RetryAfter:
      description: Seconds to wait before retrying (`CONVEYOR_RETRY_AFTER_SECONDS`).
      required: true
      schema:
        type: integer
        minimum: 0
    IdempotentReplayed:
      description: '`true`: nothing new was created; the reply describes what the same idempotency key created before.'
      required: true
      schema:
        type: string
        const: 'true'
  responses:
    BadRequest:
      description: |-
        The request is malformed or a value is out of range; `code` says which rule (the operation's
        description lists its codes) and `index` names the batch element or workflow node at fault.
      headers:
        X-Correlation-ID:
          $ref: '#/components/headers/XCorrelationID'
      content:
        application/json:
          schema:
            $ref: '#/components/schemas/Error'
    Unauthorized:
      description: 'Missing or unknown bearer token (`unauthorized`).'
      headers:
        X-Correlation-ID:
          $ref: '#/components/headers/XCorrelationID'
      content:
        application/json:
          schema:
            $ref: '#/components/schemas/Error'
    Forbidden:
      description: 'The token lacks the scope the route needs (`forbidden`; the message names the scope).'
      headers:
        X-Correlation-ID:
          $ref: '#/components/headers/XCorrelationID'
      content:
        application/json:
          schema:
            $ref: '#/components/schemas/Error'
    NotFound:
      description: |-
        `not_found`: no such task, workflow, queue or type (or one the token may not see), or metrics
        are off.
      headers:
        X-Correlation-ID:
          $ref: '#/components/headers/XCorrelationID'
      content:
        application/json:
          schema:
            $ref: '#/components/schemas/Error'
    Conflict:
      description: |-
        The action does not apply in the current state: `already_finished`, `stale_attempt`,
        `workflow_running`, `nothing_to_retry`, `not_dead` or `expiring`.
      headers:
        X-Correlation-ID:
          $ref: '#/components/headers/XCorrelationID'
      content:
        application/json:
          schema:
            $ref: '#/components/schemas/Error'
    PayloadTooLarge:
      description: 'The body is larger than the route accepts (`payload_too_large`).'
      headers:
        X-Correlation-ID:
          $ref: '#/components/headers/XCorrelationID'
      content:
        application/json:
          schema:
            $ref: '#/components/schemas/Error'
    Unprocessable:
      description: |-
        Well-formed but not acceptable: `unknown_task_type`, `unknown_queue`, `invalid_callback_url`
        (with `index` for a batch element or workflow node).
      headers:
        X-Correlation-ID:
          $ref: '#/components/headers/XCorrelationID'
      content:
        application/json:
          schema:
            $ref: '#/components/schemas/Error'
    InternalError:
      description: 'An unexpected failure (`internal`); the details are in the coordinator''s log, never in the reply.'
      headers:
        X-Correlation-ID:
          $ref: '#/components/headers/XCorrelationID'
      content:
        application/json:
          schema:
            $ref: '#/components/schemas/Error'
    ServiceUnavailable:
      description: |-
        `unavailable`: PostgreSQL or Redis is unreachable or refusing writes, or the coordinator is
        shutting down. The message says whether anything may have been stored. Retry after `Retry-After`
        seconds.
      headers:
        X-Correlation-ID:
          $ref: '#/components/headers/XCorrelationID'
        Retry-After:
          $ref: '#/components/headers/RetryAfter'
      content:
        application/json:
          schema:
            $ref: '#/components/schemas/Error'
  schemas:
    Error:
      type: object
      required: [error]
      properties:
        error:
          type: object
          required: [code, message]
          properties:
            code:
              type: string
              description: A stable, machine-readable code such as `invalid_field` or `not_found`.
            message:
              type: string
              description: What is wrong, for people; names the field at fault.
            index:
              type: integer
              minimum: 0
              description: In a batch or a workflow, the position of the element or node at fault.
    TaskStatus:
      type: string
      enum: [scheduled, waiting, queued, running, succeeded, failed, retrying, dead, cancelled, skipped]
      description: |-
        `scheduled` (waiting for its `run_at`) and `waiting` (a workflow node waiting for its
        dependencies) come before `queued`; `succeeded`, `failed`, `dead`, `cancelled` and `skipped` are
        terminal.
    WorkflowStatus:
      type: string
      enum: [running, succeeded, failed, cancelled]
    Priority:
      type: string
      enum: [low, normal, high]
    PriorityInput:
      description: '`"low"`, `"normal"` (the default), `"high"`, or 0–2 (also as a string); higher starts first.'
      anyOf:
        - $ref: '#/components/schemas/Priority'
        - type: string
          enum: ['0', '1', '2']
        - type: integer
          minimum: 0
          maximum: 2
    Timestamp:
      type: string
      format: date-time
      description: RFC 3339, UTC, with milliseconds (`2026-11-30T03:17:39.645Z`).
    Tags:
      type: object
      description: Tags as string values by key (`{}` for none).
      additionalProperties:
        type: string
    Progress:
      type: object
      description: The latest progress report of an attempt.
      required: [attempt, updated_at]
      properties:
        fraction:
          type: number
          minimum: 0
          maximum: 1
        step:
          type: integer
          minimum: 0
        total_steps:
          type: integer
          minimum: 1
        message:
          type: string
        attempt:
          type: integer
        updated_at:
          $ref: '#/components/schemas/Timestamp'
    Task:
      type: object
      description: A task's full record.
      required: [id, type, queue, status, attempts, max_attempts, params, result, error, correlation_id,
                 idempotency_key, created_at, updated_at, started_at, finished_at, progress, tags, run_at,
                 callback_url, priority, limit_key]
      properties:
        id:
          type: integer
          format: int64
        type:
          type: string
        queue:
          type: string
        status:
          $ref: '#/components/schemas/TaskStatus'
        attempts:
          type: integer
          description: Attempts started so far.
        max_attempts:
          type: integer
        params:
          type: object
          description: The params it was submitted with.
        result:
          description: The handler's result (any JSON value), or null.
        error:
          type: [string, 'null']
        correlation_id:
          type: string
        idempotency_key:
          type: [string, 'null']
        created_at:
          $ref: '#/components/schemas/Timestamp'
        updated_at:
          $ref: '#/components/schemas/Timestamp'
        started_at:
          type: [string, 'null']
          format: date-time
        finished_at:
          type: [string, 'null']
          format: date-time
        progress:
          description: The latest progress report, null until one is made.
          anyOf:
            - $ref: '#/components/schemas/Progress'
            - type: 'null'
        tags:
          $ref: '#/components/schemas/Tags'
        run_at:
          type: [string, 'null']
          format: date-time
          description: When a scheduled task is (or was) due; null for one submitted to run at once.
        callback_url:
          type: [string, 'null']
        priority:
          $ref: '#/components/schemas/Priority'
        limit_key:
          type: [string, 'null']
    TaskSummary:
      type: object
      description: A task as the search shows it (no params, result or progress; error cut to 300 characters).
      required: [id, type, queue, status, attempts, max_attempts, correlation_id, idempotency_key, created_at,
                 updated_at, finished_at, error, tags, workflow_id]
      properties:
        id:
          type: integer
          format: int64
        type:
          type: string
        queue:
          type: string
        status:
          $ref: '#/components/schemas/TaskStatus'
        attempts:
          type: integer
        max_attempts:
          type: integer
        correlation_id:
          type: string
        idempotency_key:
          type: [string, 'null']
        created_at:
          $ref: '#/components/schemas/Timestamp'
        updated_at:
          $ref: '#/components/schemas/Timestamp'
        finished_at:
          type: [string, 'null']
          format: date-time
        error:
          type: [string, 'null']
        tags:
          $ref: '#/components/schemas/Tags'
        workflow_id:
          type: [integer, 'null']
          format: int64
          description: The workflow the task is a node of, or null.
    TaskPage:
      type: object
      required: [tasks, next_cursor]
      properties:
        tasks:
          type: array
          items:
            $ref: '#/components/schemas/TaskSummary'
        next_cursor:
          type: [string, 'null']
          description: Pass as `cursor` for the next (older) page; null at the end.
    TaskSubmission:
      type: object
      description: |-
        One task (the body of `POST /v1/tasks`, and each element of a batch). Members not listed here
        are ignored.
      required: [type]
      properties:
        type:
          type: string
          description: A task type the registry declares (422 `unknown_task_type` otherwise).
        params:
          type: object
          description: Any JSON object (default `{}`); strings must not contain U+0000.
        queue:
          type: string
          description: A queue the registry declares (422 `unknown_queue` otherwise); default the type's queue.
        max_attempts:
          type: integer
          minimum: 1
          maximum: 100
          description: Default the type's.
        idempotency_key:
          type: string
          minLength: 1
          maxLength: 255
          description: |-
            Not together with the `Idempotency-Key` header (single submission), which is the usual way;
            in a batch, an element's own key.
        tags:
          type: object
          maxProperties: 20
          description: |-
            At most 20; keys 1–64 bytes of letters, digits and `_ . : / -`, values at most 256 bytes
            without control characters.
          propertyNames:
            pattern: '^[A-Za-z0-9_.:/-]{1,64}$'
          additionalProperties:
            type: string
        delay:
          description: |-
            Run later: a duration (`"90s"`, `"5m"`, `"2h"`, `"1500ms"`) or a number of seconds, at most
            366 days. Not together with `run_at`.
          type: [string, number]
        run_at:
          type: string
          format: date-time
          description: |-
            Run at this RFC 3339 time, at most 366 days ahead (a time that has passed runs now). Not
            together with `delay`.
        callback_url:
          type: string
          description: |-
            Where to POST the task's final record when it finishes (an `http`/`https` URL on a host
            `CONVEYOR_WEBHOOK_HOSTS` allows; 422 `invalid_callback_url` otherwise). Default the type's.
        priority:
          $ref: '#/components/schemas/PriorityInput'
        limit_key:
          type: string
          minLength: 1
          description: 1–128 bytes without spaces or control characters; the key the type's `per_key` limits count under.
    Submitted:
      type: object
      required: [id, status]
      properties:
        id:
          type: integer
          format: int64
        status:
          $ref: '#/components/schemas/TaskStatus'
        run_at:
          $ref: '#/components/schemas/Timestamp'
          description: When a newly scheduled task is due (only on a 201 for a task submitted to run later).
    BatchSubmission:
      type: object
      required: [tasks]
      properties:
        tasks:
          type: array
          minItems: 1
          maxItems: 1000
          items:
            $ref: '#/components/schemas/TaskSubmission'
    BatchSubmitted:
      type: object
      required: [tasks]
      properties:
        tasks:
          type: array
          description: One per element, in the order given.
          items:
            type: object
            required: [id, status]
            properties:
              id:
                type: integer
                format: int64
              status:
                $ref: '#/components/schemas/TaskStatus'
    TaskCancelled:
      type: object
      required: [id, status]
      properties:
        id:
          type: integer
          format: int64
        status:
          type: string
          const: cancelled
    FilterValue:
      description: A string or an integer, or an array of them (for `status` and `tag`, several values).
      anyOf:
        - type: [string, integer]
        - type: array
          items:
            type: [string, integer]
    BulkFilter:
      type: object
      description: |-
        The search's filters as members (an unknown member is a 400 `invalid_filter`), plus `limit`.
        At least one filter is needed.
      additionalProperties: false
      properties:
        status:
          $ref: '#/components/schemas/FilterValue'
          description: Statuses, as an array or comma-separated.
        type:
          $ref: '#/components/schemas/FilterValue'
        queue:
          $ref: '#/components/schemas/FilterValue'
        tag:
          $ref: '#/components/schemas/FilterValue'
          description: '`key:value`, or an array of them (at most 8).'
        correlation_id:
          $ref: '#/components/schemas/FilterValue'
        idempotency_key:
          $ref: '#/components/schemas/FilterValue'
        created_after:
          $ref: '#/components/schemas/FilterValue'
          description: RFC 3339.
        created_before:
          $ref: '#/components/schemas/FilterValue'
          description: RFC 3339.
        finished_after:
          $ref: '#/components/schemas/FilterValue'
          description: RFC 3339.
        finished_before:
          $ref: '#/components/schemas/FilterValue'
          description: RFC 3339.
        error:
          $ref: '#/components/schemas/FilterValue'
          description: Text the error contains, at most 200 characters.
        limit:
          description: The most tasks to act on, 1–10,000 (default 1,000); a number or a string of digits.
          type: [integer, string]
          minimum: 1
          maximum: 10000
      examples:
        - status: [dead]
          type: resize_image
          limit: 500
    BulkCancelled:
      type: object
      required: [cancelled, more]
      properties:
        cancelled:
          type: integer
          description: Tasks cancelled.
        more:
          type: boolean
          description: Whether it stopped with matching tasks possibly left.
    BulkRetried:
      type: object
      required: [retried, more]
      properties:
        retried:
          type: integer
          description: Tasks queued again.
        more:
          type: boolean
          description: Whether it stopped with matching tasks possibly left.
    TaskEvent:
      type: object
      description: |-
        One item of a task's history. `kind` is one of `queued`, `scheduled`, `dispatched`, `running`,
        `progress`, `retrying`, `succeeded`, `failed`, `dead`, `cancelled`, `skipped`, `redriven`,
        `webhook`; the other members depend on it. API actions carry `"agent": "api"`.
      required: [id, kind, at, attempt]
      properties:
        id:
          type: string
          description: The item's cursor (`<ms>.<event id>`; `0.` for the first item).
        kind:
          type: string
        at:
          $ref: '#/components/schemas/Timestamp'
        attempt:
          type: integer
          description: The attempt it belongs to (0 for the first item).
        agent:
          type: string
          description: Who recorded the step (an agent's id, `api`, …).
        run_at:
          $ref: '#/components/schemas/Timestamp'
          description: On a `scheduled` item, when the task is due.
        error:
          type: string
        result:
          description: On a `succeeded` item, the result (any JSON value).
        next_attempt_at:
          $ref: '#/components/schemas/Timestamp'
          description: On a `retrying` item, or a failed `webhook` try, when the next try is due.
        progress:
          description: On a `progress` item, the report.
          anyOf:
            - type: object
            - type: 'null'
        delivery:
          type: string
          description: On a `webhook` item, the delivery id.
        url:
          type: string
          description: On a `webhook` item, where it was sent.
        outcome:
          type: string
          description: On a `webhook` item, `delivered`, `failed` or `gave_up`.
        try:
          type: integer
          description: On a `webhook` item, which try of the delivery.
        status_code:
          type: integer
          description: On a `webhook` item, the receiver's HTTP status.
    TaskEventPage:
      type: object
      required: [task_id, events, next_cursor]
      properties:
        task_id:
          type: integer
          format: int64
        events:
          type: array
          items:
            $ref: '#/components/schemas/TaskEvent'
        next_cursor:
          type: [string, 'null']
          description: Pass as `cursor` for the next page; null at the end.
    ProgressReport:
      type: object
      description: At least one of `fraction`, `step`, `total_steps` and `message`; any other member is a 400.
      additionalProperties: false
      properties:
        fraction:
          type: [number, 'null']
          minimum: 0
          maximum: 1
        step:
          type: [integer, 'null']
          minimum: 0
          maximum: 1000000000
          description: The step being worked on (from 0), at most `total_steps`.
        total_steps:
          type: [integer, 'null']
          minimum: 1
          maximum: 1000000000
        message:
          type: [string, 'null']
          description: At most 1,024 bytes, without U+0000.
        attempt:
          type: [integer, 'null']
          minimum: 1
          description: The attempt the report belongs to (default the current one); the current one or the next.
      anyOf:
        - required: [fraction]
        - required: [step]
        - required: [total_steps]
        - required: [message]
    ProgressAccepted:
      type: object
      required: [id, accepted]
      properties:
        id:
          type: integer
          format: int64
        accepted:
          type: boolean
          const: true
    WorkflowNode:
      type: object
      description: |-
        A node: its `key`, `depends_on` and `on_dependency_failure`, beside the members of its task
        (those of a task submission, except `delay`, `run_at` and `idempotency_key`, which are a 400
        `invalid_workflow`).
      required: [type]
      properties:
        key:
          type: string
          pattern: '^[A-Za-z0-9_.:-]{1,128}$'
          description: Unique in the workflow. Required in `nodes`; in a `chain` it defaults to the position (`1`, `2`, …).
        depends_on:
          type: array
          items:
            type: string
          description: Keys of the nodes it waits for (`nodes` only; a chain's node depends on the one before).
        on_dependency_failure:
          type: string
          enum: [fail, skip, run]
          default: fail
        type:
          type: string
        params:
          type: object
        queue:
          type: string
        max_attempts:
          type: integer
          minimum: 1
          maximum: 100
        tags:
          type: object
          maxProperties: 20
          additionalProperties:
            type: string
        callback_url:
          type: string
        priority:
          $ref: '#/components/schemas/PriorityInput'
        limit_key:
          type: string
          minLength: 1
    WorkflowSubmission:
      type: object
      description: A name and either `nodes` (a graph) or `chain` (a line), not both.
      required: [name]
      properties:
        name:
          type: string
          minLength: 1
          description: 1–128 bytes without control characters.
        nodes:
          type: array
          minItems: 1
          maxItems: 10000
          items:
            $ref: '#/components/schemas/WorkflowNode'
        chain:
          type: array
          minItems: 1
          maxItems: 10000
          items:
            $ref: '#/components/schemas/WorkflowNode'
      oneOf:
        - required: [nodes]
        - required: [chain]
    WorkflowSubmitted:
      type: object
      required: [id, status, nodes]
      properties:
        id:
          type: integer
          format: int64
        status:
          $ref: '#/components/schemas/WorkflowStatus'
        nodes:
          type: object
          description: Each node's task id, by node key.
          additionalProperties:
            type: integer
            format: int64
    WorkflowSummary:
      type: object
      required: [id, name, status, node_count, correlation_id, idempotency_key, created_at, updated_at, finished_at]
      properties:
        id:
          type: integer
          format: int64
        name:
          type: string
        status:
          $ref: '#/components/schemas/WorkflowStatus'
        node_count:
          type: integer
        correlation_id:
          type: string
        idempotency_key:
          type: [string, 'null']
        created_at:
          $ref: '#/components/schemas/Timestamp'
        updated_at:
          $ref: '#/components/schemas/Timestamp'
        finished_at:
          type: [string, 'null']
          format: date-time
    WorkflowNodeRecord:
      type: object
      required: [key, task_id, type, queue, status, attempts, depends_on, on_dependency_failure, error,
                 created_at, updated_at, started_at, finished_at]
      properties:
        key:
          type: string
        task_id:
          type: integer
          format: int64
        type:
          type: string
        queue:
          type: string
        status:
          $ref: '#/components/schemas/TaskStatus'
        attempts:
          type: integer
        depends_on:
          type: array
          items:
            type: string
        on_dependency_failure:
          type: string
          enum: [fail, skip, run]
        error:
          type: [string, 'null']
        created_at:
          $ref: '#/components/schemas/Timestamp'
        updated_at:
          $ref: '#/components/schemas/Timestamp'
        started_at:
          type: [string, 'null']
          format: date-time
        finished_at:
          type: [string, 'null']
          format: date-time
    Workflow:
      description: A workflow with its node counts by status and its nodes, in submission order.
      allOf:
        - $ref: '#/components/schemas/WorkflowSummary'
        - type: object
          required: [counts, nodes]
          properties:
            counts:
              type: object
              description: Nodes by status; statuses no node has are left out.
              propertyNames:
                $ref: '#/components/schemas/TaskStatus'
              additionalProperties:
                type: integer
                minimum: 1
            nodes:
              type: array
              items:
                $ref: '#/components/schemas/WorkflowNodeRecord'
    WorkflowPage:
      type: object
      required: [workflows, next_cursor]
      properties:
        workflows:
          type: array
          items:
            $ref: '#/components/schemas/WorkflowSummary'
        next_cursor:
          type: [string, 'null']
          description: Pass as `cursor` for the next (older) page; null at the end.
    WorkflowCancelled:
      type: object
      required: [id, status, cancelled_nodes]
      properties:
        id:
          type: integer
          format: int64
        status:
          type: string
          const: cancelled
        cancelled_nodes:
          type: integer
          description: Nodes cancelled by this call.
    WorkflowRetried:
      type: object
      required: [id, status, started_nodes]
      properties:
        id:
          type: integer
          format: int64
        status:
          type: string
          const: running
        started_nodes:
          type: integer
          description: Nodes queued at once by the retry (others wait for their dependencies).
    DeadLetter:
      type: object
      required: [id, type, queue, attempt, error, dead_at, correlation_id]
      properties:
        id:
          type: [integer, 'null']
          format: int64
        type:
          type: [string, 'null']
        queue:
          type: string
        attempt:
          type: [integer, 'null']
          description: The attempt it died on.
        error:
          type: string
          description: Why it died (empty when not recorded).
        dead_at:
          type: [string, 'null']
          format: date-time
        correlation_id:
          type: [string, 'null']
    DeadLetterPage:
      type: object
      required: [dead, next_cursor]
      properties:
        dead:
          type: array
          items:
            $ref: '#/components/schemas/DeadLetter'
        next_cursor:
          type: [string, 'null']
          description: Pass as `cursor` for the next page; null at the end.
    Redriven:
      type: object
      required: [redriven]
      properties:
        redriven:
          type: integer
          description: Dead tasks queued again.
    RedrivenTask:
      type: object
      required: [id, status, attempt, max_attempts]
      properties:
        id:
          type: integer
          format: int64
        status:
          type: string
          const: queued
        attempt:
          type: integer
          description: The attempt it will run as next.
        max_attempts:
          type: integer
    Queue:
      type: object
      required: [name, paused, paused_at, types, paused_types]
      properties:
        name:
          type: string
        paused:
          type: boolean
          description: Whether the whole queue is paused.
        paused_at:
          type: [string, 'null']
          format: date-time
          description: When the whole queue was paused; null when it is not.
        types:
          type: array
          description: The queue's task types, sorted.
          items:
            type: string
        paused_types:
          type: array
          description: The queue's types paused on their own.
          items:
            type: string
    QueueList:
      type: object
      required: [queues]
      properties:
        queues:
          type: array
          items:
            $ref: '#/components/schemas/Queue'
    Paused:
      type: object
      required: [queue, type, paused, paused_at]
      properties:
        queue:
          type: string
        type:
          type: [string, 'null']
          description: The paused type; null when the whole queue was paused.
        paused:
          type: boolean
          const: true
        paused_at:
          $ref: '#/components/schemas/Timestamp'
          description: When the pause began (the first pause's time, when already paused).
    Resumed:
      type: object
      required: [queue, type, paused, was_paused, requeued]
      properties:
        queue:
          type: string
        type:
          type: [string, 'null']
          description: The resumed type; null when the whole queue was resumed.
        paused:
          type: boolean
          const: false
        was_paused:
          type: boolean
        requeued:
          type: integer
          description: Entries the pause had set aside, now put back.
    Schedule:
      type: object
      required: [name, cron, time_zone, type, queue, params, missed, last_tick, next_tick]
      properties:
        name:
          type: string
        cron:
          type: string
          description: The cron expression.
        time_zone:
          type: string
        type:
          type: string
        queue:
          type: [string, 'null']
        params:
          type: object
        missed:
          type: string
          enum: [latest, skip, all]
          description: What happens to ticks that fell while no coordinator ran.
        last_tick:
          type: [string, 'null']
          format: date-time
          description: The last tick enqueued; null before the first.
        next_tick:
          type: [string, 'null']
          format: date-time
    ScheduleList:
      type: object
      required: [schedules]
      properties:
        schedules:
          type: array
          items:
            $ref: '#/components/schemas/Schedule'
    Health:
      type: object
      required: [status]
      properties:
        status:
          type: string
          const: ok
    Ready:
      type: object
      required: [status, redis, postgres]
      properties:
        status:
          type: string
          enum: [ready, unavailable]
        redis:
          type: string
          description: '`ok`, or (without a `read` token) `unavailable`, or (with one) the error.'
        postgres:
          type: string
          description: '`ok`, or (without a `read` token) `unavailable`, or (with one) the error.'
    TypeStatus:
      type: object
      description: A type with a limit or a pause, and the use of its limits.
      required: [max_concurrent, running, utilisation, rate_limit, waiting_for_slot, paused, parked_by_pause]
      properties:
        max_concurrent:
          type: [integer, 'null']
        running:
          type: integer
          description: Slots held now.
        utilisation:
          type: [number, 'null']
          description: '`running / max_concurrent`; null without a concurrency limit.'
        rate_limit:
          type: [string, 'null']
          examples: ['10/s']
        waiting_for_slot:
          type: integer
        paused:
          type: boolean
        parked_by_pause:
          type: integer
        per_key:
          type: object
          description: Present when the type has `per_key` limits.
          required: [max_concurrent, rate_limit, keys_waiting]
          properties:
            max_concurrent:
              type: [integer, 'null']
            rate_limit:
              type: [string, 'null']
            keys_waiting:
              type: integer
    QueueStatus:
      type: object
      required: [ready, ready_by_priority, in_flight, delayed, dead, paused, paused_types, types]
      properties:
        ready:
          type: integer
          description: Entries not yet delivered to an agent.
        ready_by_priority:
          type: object
          required: [high, normal, low]
          properties:
            high:
              type: integer
            normal:
              type: integer
            low:
              type: integer
        in_flight:
          type: integer
        delayed:
          type: integer
        dead:
          type: integer
        paused:
          type: boolean
        paused_types:
          type: array
          items:
            type: string
        types:
          type: object
          description: By type name, the types with a limit or a pause.
          additionalProperties:
            $ref: '#/components/schemas/TypeStatus'
    Agent:
      type: object
      description: A live agent's last heartbeat (times in Unix milliseconds).
      required: [id, host, pid, queues, concurrency, in_flight, started_at, at, expires_at]
      properties:
        id:
          type: string
        host:
          type: string
        pid:
          type: integer
        queues:
          type: array
          items:
            type: string
        concurrency:
          type: integer
        in_flight:
          type: object
          additionalProperties:
            type: integer
        started_at:
          type: integer
          format: int64
        at:
          type: integer
          format: int64
        expires_at:
          type: integer
          format: int64
    Status:
      type: object
      required: [queues, in_flight_by_type, live_agents]
      properties:
        queues:
          type: object
          description: By queue name.
          additionalProperties:
            $ref: '#/components/schemas/QueueStatus'
        in_flight_by_type:
          type: object
          description: Tasks running or waiting for a slot, by type, summed over the live agents.
          additionalProperties:
            type: integer
        live_agents:
          type: integer
        agents:
          type: array
          description: Only with a `read` token (or with authentication disabled).
          items:
            $ref: '#/components/schemas/Agent'
"""#
}
