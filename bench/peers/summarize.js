'use strict';
// Reads the `loadtest --json` reports of scripts/bench-peers.sh.
//
//   node summarize.js line REPORT.json   one progress line for one run
//   node summarize.js table RUNS.tsv     the side-by-side tables (medians per side) in Markdown
//
// RUNS.tsv (written by the script, one row per run, tab-separated, with a header):
//   round side workload rate exit json window_s busy_ticks cpu
// where `cpu` is `group:ticks,...` (utime+stime over the send window, clock ticks of CLK_TCK).
const fs = require('node:fs');

const CLK_TCK = Number(process.env.CLK_TCK || 100);

function load(path) {
  try {
    return JSON.parse(fs.readFileSync(path, 'utf8'));
  } catch {
    return null;
  }
}

const fmt = (v, digits = 0) =>
  v === null || v === undefined || Number.isNaN(v)
    ? 'n/a'
    : v.toLocaleString('en-US', { minimumFractionDigits: digits, maximumFractionDigits: digits });

function median(values) {
  const v = values.filter((x) => typeof x === 'number' && !Number.isNaN(x)).sort((a, b) => a - b);
  if (v.length === 0) return null;
  const mid = Math.floor(v.length / 2);
  return v.length % 2 ? v[mid] : (v[mid - 1] + v[mid]) / 2;
}

function line(path) {
  const r = load(path);
  if (!r) return `no report (${path})`;
  const d = r.deliveries;
  return [
    r.passed ? 'PASS' : `FAIL (${r.failures.join('; ')})`,
    `connected ${r.connections.connected}/${r.connections.attempted}`,
    `acked/s ${fmt(r.sends.acked_per_sec)}`,
    `deliveries/s ${fmt(r.deliveries_per_sec)}`,
    `deliver p50/p99 ${fmt(r.latency.p50_ms, 1)}/${fmt(r.latency.p99_ms, 1)} ms`,
    `ack p50/p99 ${fmt(r.ack_latency.p50_ms, 1)}/${fmt(r.ack_latency.p99_ms, 1)} ms`,
    `lost/dup/ooo ${d.lost}/${d.duplicated}/${d.out_of_order}`,
  ].join(', ');
}

function readRuns(path) {
  const rows = fs.readFileSync(path, 'utf8').trim().split('\n');
  const head = rows.shift().split('\t');
  return rows.map((row) => {
    const cells = row.split('\t');
    const run = Object.fromEntries(head.map((h, i) => [h, cells[i]]));
    run.report = load(run.json);
    run.cpu = Object.fromEntries(
      (run.cpu || '')
        .split(',')
        .filter(Boolean)
        .map((kv) => {
          const [k, v] = kv.split(':');
          return [k, Number(v) / CLK_TCK];
        }),
    );
    run.busy = Number(run.busy_ticks) / CLK_TCK;
    run.window = Number(run.window_s);
    return run;
  });
}

function table(path) {
  const runs = readRuns(path).filter((r) => r.report);
  const workloads = [];
  for (const r of runs) {
    const key = r.workload === 'fanout' ? `fanout R=${r.rate}` : r.workload;
    r.key = key;
    if (!workloads.includes(key)) workloads.push(key);
  }
  const out = [];
  out.push('| workload | metric | ours (median) | peer (median) | ours / peer |');
  out.push('|---|---|---|---|---|');
  for (const key of workloads) {
    const side = (s) => runs.filter((r) => r.key === key && r.side === s);
    const ours = side('ours');
    const peer = side('peer');
    const durable = key === 'durable';
    const metrics = [
      ['acked sends/s', (r) => r.report.sends.acked_per_sec, 0, true],
      ['deliveries/s', (r) => r.report.deliveries_per_sec, 0, !durable],
      ['send -> deliver p50 ms', (r) => r.report.latency.p50_ms, 1, true],
      ['send -> deliver p99 ms', (r) => r.report.latency.p99_ms, 1, true],
      ['send -> ack p50 ms', (r) => r.report.ack_latency.p50_ms, 1, true],
      ['send -> ack p99 ms', (r) => r.report.ack_latency.p99_ms, 1, true],
    ];
    let first = true;
    for (const [name, get, digits, show] of metrics) {
      if (!show) continue;
      const a = median(ours.map(get));
      const b = median(peer.map(get));
      const ratio = a !== null && b ? fmt(a / b, 2) : 'n/a';
      out.push(`| ${first ? `**${key}**` : ''} | ${name} | ${fmt(a, digits)} | ${fmt(b, digits)} | ${ratio} |`);
      first = false;
    }
    const sum = (rs, f) => rs.reduce((acc, r) => acc + f(r.report.deliveries), 0);
    const lost = (rs) =>
      `${sum(rs, (d) => d.lost)} / ${sum(rs, (d) => d.duplicated)} / ${sum(rs, (d) => d.out_of_order)}`;
    out.push(`| | lost / dup / out of order (all runs) | ${lost(ours)} | ${lost(peer)} | |`);
    const passed = (rs) => `${rs.filter((r) => r.report.passed).length} of ${rs.length}`;
    out.push(`| | runs PASS | ${passed(ours)} | ${passed(peer)} | |`);
  }

  // CPU per operation: per delivery (fanout) or per acked send (durable), by process group.
  const groups = ['edges', 'node', 'haproxy', 'postgres', 'redis', 'api'];
  out.push('');
  out.push(
    'CPU per operation, median of the runs: microseconds of utime+stime per delivery (fanout) or ' +
      'per acked send (durable), over the send window; "rest" is the machine\'s busy time ' +
      'outside these processes (the load generator, the kernel, anything else).',
  );
  out.push('');
  out.push(`| workload | side | ${groups.join(' | ')} | servers | rest | window s | busy CPU-s, each run |`);
  out.push(`|---|---|${groups.map(() => '---').join('|')}|---|---|---|---|`);
  for (const key of workloads) {
    for (const s of ['ours', 'peer']) {
      const rs = runs.filter((r) => r.key === key && r.side === s);
      if (rs.length === 0) continue;
      const ops = (r) =>
        key === 'durable' ? r.report.sends.acked_unique : r.report.deliveries.received;
      const per = (r, secs) => (ops(r) > 0 ? (secs * 1e6) / ops(r) : null);
      const cells = groups.map((g) => {
        const v = median(rs.map((r) => (g in r.cpu ? per(r, r.cpu[g]) : null)));
        return v === null ? '-' : fmt(v, 2);
      });
      const servers = (r) => Object.values(r.cpu).reduce((a, b) => a + b, 0);
      const total = median(rs.map((r) => per(r, servers(r))));
      const rest = median(rs.map((r) => per(r, Math.max(0, r.busy - servers(r)))));
      out.push(
        `| ${key} | ${s} | ${cells.join(' | ')} | ${fmt(total, 2)} | ${fmt(rest, 2)} | ${fmt(median(rs.map((r) => r.window)), 1)} | ${rs.map((r) => fmt(r.busy, 1)).join(' / ')} |`,
      );
    }
  }

  // Every run, in the order it ran.
  out.push('');
  out.push(
    'Each run: acked sends/s (durable) or deliveries/s (fanout); latencies in ms; the machine\'s ' +
      'busy CPU-seconds over the window (2 cores: at most twice the window).',
  );
  out.push('');
  out.push('| round | side | workload | exit | per s | deliver p50 / p99 | ack p50 / p99 | lost / dup / ooo | busy CPU-s |');
  out.push('|---|---|---|---|---|---|---|---|---|');
  for (const r of runs) {
    const x = r.report;
    const d = x.deliveries;
    const rate = r.key === 'durable' ? x.sends.acked_per_sec : x.deliveries_per_sec;
    out.push(
      `| ${r.round} | ${r.side} | ${r.key} | ${r.exit} | ${fmt(rate)} | ` +
        `${fmt(x.latency.p50_ms, 1)} / ${fmt(x.latency.p99_ms, 1)} | ` +
        `${fmt(x.ack_latency.p50_ms, 1)} / ${fmt(x.ack_latency.p99_ms, 1)} | ` +
        `${d.lost} / ${d.duplicated} / ${d.out_of_order} | ${fmt(r.busy, 1)} |`,
    );
  }
  return out.join('\n');
}

const [mode, arg] = process.argv.slice(2);
if (mode === 'line' && arg) {
  console.log(line(arg));
} else if (mode === 'table' && arg) {
  console.log(table(arg));
} else {
  console.error('usage: node summarize.js line REPORT.json | table RUNS.tsv');
  process.exit(2);
}
