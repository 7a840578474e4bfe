#!/usr/bin/env node
// Logs entries with winston through winston-loki to a Loki push endpoint, waits until every push
// was answered, then prints ONE JSON line on stdout: {"mode", "sent", "errors"}.
//
// Usage: NODE_PATH=target/node/node_modules node winston_push.js SPEC_JSON
//
// SPEC_JSON: {"host": "http://127.0.0.1:3100", "mode": "proto" | "json", "tenant": "t" | null,
//             "labels": {...}, "entries": [{"level", "message", "meta": [[key, value], ...],
//             "labels": {...}, "ts_ms": <ms since the epoch>}]}
// (meta is a list of pairs so that its keys keep their order, as in the line winston-loki writes)
//
// mode "proto" is winston-loki's default: protobuf, snappy-compressed, batched (sent when the
// transport is closed). mode "json" is `json: true` with `batching: false`: one JSON push per entry,
// each entry carrying its metadata as structured metadata. `replaceTimestamp: false` keeps the
// entries' own `ts_ms`, so a test knows every timestamp it reads back.
'use strict'

const winston = require('winston')
const LokiTransport = require('winston-loki')

async function main () {
  const spec = JSON.parse(process.argv[2])
  const errors = []
  const json = spec.mode === 'json'
  const transport = new LokiTransport({
    host: spec.host,
    labels: spec.labels,
    json,
    batching: !json,
    replaceTimestamp: false,
    gracefulShutdown: false,
    timeout: 30000,
    headers: spec.tenant ? { 'X-Scope-OrgID': spec.tenant } : {},
    onConnectionError: err => errors.push(String(err && err.message ? err.message : err))
  })
  // winston-loki reports a failed push of an unbatched entry on console.error only.
  const consoleError = console.error
  console.error = (...args) => {
    errors.push(args.map(String).join(' '))
    consoleError(...args)
  }
  const logger = winston.createLogger({ level: 'debug', transports: [transport] })
  // The transport emits 'logged' after it handed an entry to its batcher.
  let logged = 0
  const allLogged = new Promise(resolve => {
    transport.on('logged', () => {
      if (++logged === spec.entries.length) resolve()
    })
  })
  for (const e of spec.entries) {
    const meta = Object.fromEntries(e.meta || [])
    meta.timestamp = e.ts_ms
    if (e.labels) meta.labels = e.labels
    logger.log(e.level, e.message, meta)
  }
  // Wait until winston handed every entry to the transport, then until Loki answered all of them.
  await allLogged
  if (json) {
    await transport.flush()
  } else {
    await transport.close()
  }
  process.stdout.write(JSON.stringify({ mode: spec.mode, sent: spec.entries.length, errors }) + '\n')
}

main().then(
  () => process.exit(0),
  err => {
    process.stderr.write(String(err && err.stack ? err.stack : err) + '\n')
    process.exit(1)
  }
)
