#!/usr/bin/env python3
"""Helpers of the Prometheus integration tests (tests/integration/): Python's standard
library only, and HTTP to 127.0.0.1 only (every URL is checked before use).

Subcommands:
  config SHIPPED OUT --prometheus ADDR --exporter ADDR --rules-dir DIR --probe-targets T,T..
      Writes the test's Prometheus configuration: the shipped docker/prometheus/prometheus.yml
      with only its addresses, /probe targets, intervals and rules path substituted, so the
      relabelling that Prometheus runs here is the shipped one, line for line.
  ready URL --timeout S      waits until URL answers 200.
  wait URL --samples N --timeout S --targets JOB=INSTANCE,...
      waits until Prometheus holds N samples of `up` for every target.
  lab URL --exporter ADDR --prometheus ADDR
      asserts what Prometheus recorded from the exporter probing the lab (NETLAB_* variables).
  dashboard URL DASHBOARD --start EPOCH
      queries every PromQL expression of the Grafana dashboard through Prometheus' API.
  lint DASHBOARD             static checks of the dashboard JSON (no Prometheus needed).
  compare URL --hosts live=IP,slow=IP,down=IP --exporters NAME=ADDR,NAME=ADDR
          --jobs JOB=NAME,... --timeout S
      two exporters probing the same hosts under one Prometheus with
      blackbox_compat.rules.yml: waits until the same alerts fire for the same hosts for
      both (bounded), then compares the rtt phase of probe_icmp_duration_seconds.
  ruleslint README RULES...  static checks of rule files: every alert has a runbook_url
      README.md#<alert name in lower case> whose anchor is a heading of README; no rule
      selects a job (a matcher on the label job), so users keep their job names.

Output follows tests/testlib.sh: "ok   - NAME" or "FAIL - NAME" plus indented details;
the exit status is 1 when a check failed.
"""
import argparse
import json
import math
import os
import re
import sys
import time
import urllib.error
import urllib.parse
import urllib.request

# The scrape interval (and timeout) of the test's Prometheus. 2 s, not the 1 s that would
# halve the test's time: a scrape must end within it, and on a busy 2-core machine the
# exporter (20 echoes 20 ms apart per probe, done in 0.6 s) and Prometheus itself can be
# kept off the CPU for a few hundred milliseconds; 1 s left 0.4 s for that, too little.
SCRAPE_S = 2

failures = 0


def check(name, ok, detail=""):
    """Prints the outcome of one check; details (the query, the answer) only on failure."""
    global failures
    if ok:
        print(f"ok   - {name}")
    else:
        failures += 1
        print(f"FAIL - {name}", file=sys.stderr)
        for line in str(detail).splitlines():
            print(f"       | {line}", file=sys.stderr)
    sys.stdout.flush()
    return ok


def done():
    if failures:
        print(f"{os.path.basename(sys.argv[0])} {sys.argv[1]}: {failures} check(s) failed",
              file=sys.stderr)
        sys.exit(1)
    print(f"{os.path.basename(sys.argv[0])} {sys.argv[1]}: all checks passed")


# --------------------------------------------------------------------------------------
# HTTP against Prometheus on loopback.

# No proxy, whatever the environment says: every request goes to 127.0.0.1 directly.
_opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))


def _loopback(url):
    host = urllib.parse.urlsplit(url).hostname
    if host != "127.0.0.1":
        raise SystemExit(f"promcheck: refusing a request to {host!r}: loopback (127.0.0.1) only")


def http_get(url, timeout=10):
    """Returns (status, body text); status 0 when nothing answered."""
    _loopback(url)
    try:
        with _opener.open(url, timeout=timeout) as r:
            return r.status, r.read().decode("utf-8", "replace")
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode("utf-8", "replace")
    except (urllib.error.URLError, OSError) as e:
        return 0, str(e)


class Prom:
    """Prometheus' HTTP API. Every call returns (data or None, description for diagnostics)."""

    def __init__(self, base):
        self.base = base.rstrip("/")

    def api(self, path, params):
        url = f"{self.base}{path}?{urllib.parse.urlencode(params, doseq=True)}"
        status, body = http_get(url)
        desc = f"GET {url}\n-> HTTP {status}: {body[:1500]}"
        try:
            doc = json.loads(body)
        except ValueError:
            return None, desc
        if status != 200 or doc.get("status") != "success":
            return None, desc
        return doc["data"], desc

    def query(self, expr, at=None):
        params = {"query": expr}
        if at is not None:
            params["time"] = f"{at:.3f}"
        data, desc = self.api("/api/v1/query", params)
        return (data["result"] if data else None), f"query: {expr}\n{desc}"

    def query_range(self, expr, start, end, step):
        data, desc = self.api("/api/v1/query_range", {
            "query": expr, "start": f"{start:.3f}", "end": f"{end:.3f}", "step": step})
        return (data["result"] if data else None), f"query_range: {expr}\n{desc}"

    def values(self, expr):
        """{frozenset(labels): float} of an instant query (None on error)."""
        res, desc = self.query(expr)
        if res is None:
            return None, desc
        return {frozenset(s["metric"].items()): float(s["value"][1]) for s in res}, desc

    def one(self, expr):
        """The single value of an instant query, or None (with the reason in desc)."""
        vals, desc = self.values(expr)
        if vals is None or len(vals) != 1:
            return None, desc
        return next(iter(vals.values())), desc


# --------------------------------------------------------------------------------------
# config: the test's prometheus.yml from the shipped one.

def cmd_config(a):
    for addr in (a.prometheus, a.exporter):
        if not addr.startswith("127.0.0.1:"):
            raise SystemExit(f"promcheck config: {addr}: loopback (127.0.0.1:PORT) only")
    text = open(a.shipped, encoding="utf-8").read()
    targets = [t for t in a.probe_targets.split(",") if t]
    # (what, pattern, replacement, how many times it must occur in the shipped file)
    subs = [
        ("global scrape_interval", r"^(\s*scrape_interval:\s*)\S+$", rf"\g<1>{SCRAPE_S}s", 1),
        ("global scrape_timeout", r"^(\s*scrape_timeout:\s*)\S+$", rf"\g<1>{SCRAPE_S}s", 1),
        ("global evaluation_interval", r"^(\s*evaluation_interval:\s*)\S+$", r"\g<1>1s", 1),
        ("rules directory", r"/etc/prometheus/rules/", a.rules_dir.rstrip("/") + "/", 1),
        ("Prometheus' own address", r"localhost:9090", a.prometheus, 1),
        ("the exporter's address (/metrics target, /probe __address__)", r"icmp-exporter:9723",
         a.exporter, 2),
    ]
    for what, pat, repl, want in subs:
        text, n = re.subn(pat, lambda m, r=repl: m.expand(r), text, flags=re.M)
        if n != want:
            raise SystemExit(f"promcheck config: {a.shipped}: {what} ({pat}) found {n} times, "
                             f"expected {want}: update the test with the shipped file")
    # The /probe job's target list: the one `- targets: [...]` line of job icmp_probe.
    m = re.search(r"^  - job_name: icmp_probe\n(?:(?!  - job_name:).*\n?)*", text, flags=re.M)
    if not m:
        raise SystemExit(f"promcheck config: {a.shipped}: no job icmp_probe")
    job = m.group(0)
    job2, n = re.subn(r"^(\s*- targets: )\[.*\]$",
                      lambda mm: mm.group(1) + json.dumps(targets), job, flags=re.M)
    if n != 1:
        raise SystemExit(f"promcheck config: {a.shipped}: job icmp_probe has {n} "
                         "'- targets: [...]' lines, expected 1")
    text = text[:m.start()] + job2 + text[m.end():]
    # Nothing may be left (comments aside) that Prometheus would resolve by DNS.
    left = re.findall(r"icmp-exporter|localhost|prometheus:\d", re.sub(r"#.*", "", text))
    if left:
        raise SystemExit(f"promcheck config: names left after substitution: {left}")
    with open(a.out, "w", encoding="utf-8") as f:
        f.write(text)


# --------------------------------------------------------------------------------------
# ready, wait

def cmd_ready(a):
    deadline = time.monotonic() + a.timeout
    status, body = 0, ""
    while time.monotonic() < deadline:
        status, body = http_get(a.url, timeout=2)
        if status == 200:
            return
        time.sleep(0.1)
    raise SystemExit(f"promcheck ready: {a.url} did not answer 200 within {a.timeout} s "
                     f"(last: {status} {body[:300]})")


def parse_targets(spec):
    out = []
    for item in spec.split(","):
        job, _, inst = item.partition("=")
        out.append((job, inst))
    return out


def cmd_wait(a):
    """Polls count_over_time(up[1h]) until every target has --samples samples."""
    prom = Prom(a.url)
    want = parse_targets(a.targets)
    t0 = time.monotonic()
    counts, desc = {}, ""
    while time.monotonic() - t0 < a.timeout:
        vals, desc = prom.values("count_over_time(up[1h])")
        counts = {}
        for labels, v in (vals or {}).items():
            d = dict(labels)
            counts[(d.get("job"), d.get("instance"))] = v
        if all(counts.get(t, 0) >= a.samples for t in want):
            print(f"ok   - Prometheus scraped every target {a.samples} times "
                  f"({time.monotonic() - t0:.1f} s)")
            return
        time.sleep(0.5)
    detail = "\n".join(f"{j} {i}: {counts.get((j, i), 0):g} samples" for j, i in want)
    _, tdesc = prom.api("/api/v1/targets", {})
    check(f"Prometheus scrapes every target {a.samples} times within {a.timeout} s", False,
          f"{detail}\n{desc}\n{tdesc}")
    done()


# --------------------------------------------------------------------------------------
# lab: what Prometheus recorded from the exporter in the lab.

def env(name):
    v = os.environ.get(name)
    if not v:
        raise SystemExit(f"promcheck lab: {name} is not set (run inside netlab.sh run)")
    return v


def near(v, want, tol):
    return v is not None and not math.isnan(v) and abs(v - want) <= tol


def cmd_lab(a):
    prom = Prom(a.url)
    d4, d6 = env("NETLAB_V4_DELAY"), env("NETLAB_V6_DELAY")
    loss, bh = env("NETLAB_V4_LOSS"), env("NETLAB_V4_BLACKHOLE")
    delay = float(env("NETLAB_DELAY_MS")) / 1000
    short = float(env("NETLAB_SHORT_DELAY_MS")) / 1000
    p_loss = float(env("NETLAB_LOSS_PCT")) / 100
    live = [d4, d6, loss]
    probe_targets = live + [bh]
    want_targets = ([("prometheus", a.prometheus), ("icmp_exporter", a.exporter)] +
                    [("icmp_probe", t) for t in probe_targets])

    # Targets as Prometheus sees them: the relabelling sent every /probe scrape to the
    # exporter with the host as ?target=, and kept the host as `instance`.
    data, desc = prom.api("/api/v1/targets", {})
    targets = (data or {}).get("activeTargets", [])
    active = {(t["labels"].get("job"), t["labels"].get("instance")): t for t in targets}
    check("/api/v1/targets: exactly the configured targets, once each",
          set(active) == set(want_targets) and len(targets) == len(want_targets),
          f"want {sorted(want_targets)}\ngot {sorted(active)} ({len(targets)} targets)\n{desc}")
    check("/api/v1/targets: no dropped target", data is not None and not data.get("droppedTargets"),
          desc)
    for key in want_targets:
        t = active.get(key)
        if t is None:
            continue
        check(f"target {key[0]} {key[1]}: health up, no lastError",
              t.get("health") == "up" and t.get("lastError") == "", json.dumps(t, indent=1))
        if key[0] == "icmp_probe":
            url = urllib.parse.urlsplit(t.get("scrapeUrl", ""))
            q = urllib.parse.parse_qs(url.query)
            check(f"  scrapes http://{a.exporter}/probe?module=icmp&target={key[1]}",
                  url.netloc == a.exporter and url.path == "/probe" and
                  q == {"module": ["icmp"], "target": [key[1]]}, t.get("scrapeUrl"))

    # up, for every job and target, at every scrape so far.
    vals, desc = prom.values("min_over_time(up[1h])")
    got = {(dict(k).get("job"), dict(k).get("instance")): v for k, v in (vals or {}).items()}
    for key in want_targets:
        check(f"up == 1 at every scrape: {key[0]} {key[1]}", got.get(key) == 1,
              f"min_over_time(up) = {got.get(key)}\n{desc}")

    # probe_success and icmp_target_success: live hosts always 1, the blackhole always 0.
    for t in probe_targets:
        fn, want = ("min_over_time", 1) if t != bh else ("max_over_time", 0)
        v, desc = prom.one(f'{fn}(probe_success{{job="icmp_probe",instance="{t}"}}[1h])')
        check(f"/probe {t}: probe_success {want} at every scrape ({fn})", v == want, desc)
        if t in (d4, loss, bh):
            v, desc = prom.one(f'{fn}(icmp_target_success{{job="icmp_exporter",target="{t}"}}[1h])')
            check(f"static {t}: icmp_target_success {want} at every scrape ({fn})", v == want, desc)
    v, desc = prom.one(f'max_over_time(probe_ip_protocol{{instance="{d6}"}}[1h])')
    check(f"/probe {d6}: probe_ip_protocol 6 (an IPv6 literal survives relabelling and the URL)",
          v == 6, desc)

    # Loss of the lossy host (NETLAB_LOSS_PCT, each request dropped independently by the
    # responder's seeded PRNG). n echoes give a binomial count: the observed ratio has
    # standard deviation sqrt(p(1-p)/n). The tolerance is 5 of them (a false failure about
    # once in 1.7 million runs); with the 20 echoes of every scrape and 20+ scrapes,
    # n >= 400 and the tolerance is at most 0.115 around 0.30. n comes from Prometheus.
    def loss_check(name, ratio_expr, n_expr):
        r, d1 = prom.one(ratio_expr)
        n, d2 = prom.one(n_expr)
        if r is None or n is None or n < 100:
            return check(f"{name}: loss ratio near {p_loss:.2f}", False,
                         f"ratio {r}, echoes {n} (want >= 100)\n{d1}\n{d2}")
        tol = 5 * math.sqrt(p_loss * (1 - p_loss) / n)
        return check(f"{name}: loss ratio {r:.3f} = {p_loss:.2f} ± {tol:.3f} "
                     f"(5 sigma, {n:g} echoes)", near(r, p_loss, tol), f"{d1}\n{d2}")

    sel = f'job="icmp_probe",instance="{loss}"'
    loss_check(f"/probe {loss}",
               f"1 - sum_over_time(probe_icmp_echoes_received{{{sel}}}[1h])"
               f" / sum_over_time(probe_icmp_echoes_sent{{{sel}}}[1h])",
               f"sum_over_time(probe_icmp_echoes_sent{{{sel}}}[1h])")
    tsel = f'job="icmp_exporter",target="{loss}"'
    loss_check(f"static {loss}",
               f'1 - icmp_target_replies_total{{{tsel},status="success"}}'
               f" / ignoring(status) icmp_target_echoes_sent_total{{{tsel}}}",
               f"icmp_target_echoes_sent_total{{{tsel}}}")
    # The recording rules over their 5 m window (all of the test's data; rate() drops the
    # first scrape's echoes, so n is one scrape smaller).
    loss_check(f"recorded instance:probe_icmp_loss:ratio5m {loss}",
               f'instance:probe_icmp_loss:ratio5m{{{sel}}}',
               f"sum_over_time(probe_icmp_echoes_sent{{{sel}}}[5m])")
    loss_check(f"recorded target:icmp_target_loss:ratio_rate5m {loss}",
               f'target:icmp_target_loss:ratio_rate5m{{{tsel}}}',
               f"increase(icmp_target_echoes_sent_total{{{tsel}}}[5m])")
    for name, expr in [
        (f"/probe {d4}", f'instance:probe_icmp_loss:ratio5m{{instance="{d4}"}}'),
        (f"static {d4}", f'target:icmp_target_loss:ratio_rate5m{{target="{d4}"}}'),
    ]:
        v, desc = prom.one(expr)
        check(f"{name}: recorded loss 0", v == 0, desc)

    # Median RTT from the histograms: the delay host's NETLAB_DELAY_MS (and the lossy host's
    # NETLAB_SHORT_DELAY_MS), within 1 ms; the module's buckets are 0.5 ms apart there.
    def median_check(name, expr, want):
        v, desc = prom.one(expr)
        return check(f"{name}: median RTT {v if v is None else round(v * 1000, 3)} ms = "
                     f"{want * 1000:g} ± 1 ms", near(v, want, 0.001), desc)

    for t, want in [(d4, delay), (d6, delay), (loss, short)]:
        median_check(f"/probe {t} histogram_quantile(0.5, probe_icmp_rtt_seconds)",
                     f'histogram_quantile(0.5, sum_over_time(probe_icmp_rtt_seconds_bucket'
                     f'{{job="icmp_probe",instance="{t}"}}[1h]))', want)
        median_check(f"/probe {t} recorded instance:probe_icmp_rtt_seconds:quantile5m",
                     f'instance:probe_icmp_rtt_seconds:quantile5m{{instance="{t}",quantile="0.5"}}',
                     want)
    for t, want in [(d4, delay), (loss, short)]:
        median_check(f"static {t} histogram_quantile(0.5, icmp_target_rtt_seconds)",
                     f'histogram_quantile(0.5, rate(icmp_target_rtt_seconds_bucket'
                     f'{{job="icmp_exporter",target="{t}"}}[1h]))', want)
        median_check(f"static {t} recorded target:icmp_target_rtt_seconds:quantile_rate5m",
                     f'target:icmp_target_rtt_seconds:quantile_rate5m'
                     f'{{target="{t}",quantile="0.5"}}',
                     want)

    # rate() of the echo counters: every /metrics scrape (each SCRAPE_S) sends 20 echoes to
    # each static target; the engine also sends 20 per /probe scrape of each of 4 hosts.
    # Bounds: the 1 s figures of 20/s (15..25), 140/s (100..180), 3/s (2..4) over SCRAPE_S.
    per = 20 / SCRAPE_S
    for t in (d4, loss, bh):
        v, desc = prom.one(f'rate(icmp_target_echoes_sent_total{{target="{t}"}}[10s])')
        check(f"static {t}: rate(icmp_target_echoes_sent_total) {v} ≈ {per:g}/s "
              f"({15 / SCRAPE_S:g}..{25 / SCRAPE_S:g})",
              v is not None and 15 / SCRAPE_S <= v <= 25 / SCRAPE_S, desc)
    v, desc = prom.one(f'rate(icmp_target_replies_total{{target="{bh}",status="timed_out"}}[10s])')
    check(f"static {bh}: rate(icmp_target_replies_total{{status=timed_out}}) {v} ≈ {per:g}/s",
          v is not None and 15 / SCRAPE_S <= v <= 25 / SCRAPE_S, desc)
    v, desc = prom.one(f'rate(icmp_target_replies_total{{target="{d4}",status="success"}}[10s])')
    check(f"static {d4}: rate(icmp_target_replies_total{{status=success}}) {v} ≈ {per:g}/s",
          v is not None and 15 / SCRAPE_S <= v <= 25 / SCRAPE_S, desc)
    v, desc = prom.one('rate(icmp_exporter_echoes_sent_total[10s])')
    check(f"rate(icmp_exporter_echoes_sent_total) {v} ≈ {140 / SCRAPE_S:g}/s "
          f"(3 static + 4 /probe hosts × 20 a scrape)",
          v is not None and 100 / SCRAPE_S <= v <= 180 / SCRAPE_S, desc)
    v, desc = prom.one('rate(icmp_exporter_replies_total{status="success"}[10s])')
    check(f"rate(icmp_exporter_replies_total{{status=success}}) {v} > 0", v is not None and v > 0,
          desc)
    v, desc = prom.one('rate(icmp_exporter_probes_total{module="icmp",result="success"}[10s])')
    check(f"rate(icmp_exporter_probes_total{{result=success}}) {v} ≈ {3 / SCRAPE_S:g}/s "
          f"(3 live /probe hosts)", v is not None and 2 / SCRAPE_S <= v <= 4 / SCRAPE_S, desc)

    # No scrape problem anywhere: Prometheus' own failure counters (from its self-scrape)
    # are all 0, every scrape kept every sample, and took less than the scrape timeout.
    counters = [
        "prometheus_target_scrapes_exceeded_sample_limit_total",
        "prometheus_target_scrapes_exceeded_body_size_limit_total",
        "prometheus_target_scrapes_sample_out_of_order_total",
        "prometheus_target_scrapes_sample_duplicate_timestamp_total",
        "prometheus_target_scrapes_sample_out_of_bounds_total",
        "prometheus_target_scrapes_cache_flush_forced_total",
        "prometheus_target_scrape_pool_exceeded_target_limit_total",
        "prometheus_target_scrape_pool_exceeded_label_limits_total",
        "prometheus_target_scrape_pools_failed_total",
        "prometheus_target_scrape_pool_reloads_failed_total",
        "prometheus_target_sync_failed_total",
        "prometheus_rule_evaluation_failures_total",
        "prometheus_rule_group_iterations_missed_total",
        "prometheus_config_last_reload_successful",
    ]
    for c in counters:
        want = 1 if c == "prometheus_config_last_reload_successful" else 0
        vals, desc = prom.values(f'{c}{{job="prometheus"}}')
        check(f"{c} == {want} (all series)",
              bool(vals) and all(v == want for v in vals.values()), desc)
    vals, desc = prom.values('{__name__=~"prometheus_target_scrapes_.*_total", job="prometheus"}')
    bad = {dict(k)["__name__"]: v for k, v in (vals or {}).items() if v != 0}
    check(f"every prometheus_target_scrapes_*_total is 0 ({len(vals or {})} counters)",
          bool(vals) and not bad, f"non-zero: {bad}\n{desc}")
    vals, desc = prom.values("min_over_time(scrape_samples_post_metric_relabeling[1h])")
    check("scrape_samples_post_metric_relabeling > 0 at every scrape of every target",
          vals is not None and len(vals) == len(want_targets) and all(v > 0 for v in vals.values()),
          desc)
    vals, desc = prom.values("scrape_samples_scraped - scrape_samples_post_metric_relabeling")
    check("no sample dropped between scraping and storing",
          vals is not None and len(vals) == len(want_targets) and
          all(v == 0 for v in vals.values()), desc)
    vals, desc = prom.values("max_over_time(scrape_duration_seconds[1h])")
    check(f"every scrape took less than the {SCRAPE_S} s scrape timeout",
          vals is not None and len(vals) == len(want_targets) and
          all(v < SCRAPE_S for v in vals.values()), desc)

    # The shipped rules: loaded from the shipped file, every rule healthy, every recording
    # rule has data.
    data, desc = prom.api("/api/v1/rules", {})
    groups = (data or {}).get("groups", [])
    rules = [r for g in groups for r in g.get("rules", [])]
    files = {g.get("file") for g in groups}
    check(f"/api/v1/rules: {len(groups)} groups, {len(rules)} rules from {files}",
          len(rules) > 0 and all(f.endswith("icmp_exporter.rules.yml") for f in files), desc)
    for r in rules:
        if r.get("health") != "ok" or r.get("lastError"):
            check(f"rule {r.get('name')}: health ok", False, json.dumps(r, indent=1))
    check("every rule's health is ok, no lastError",
          all(r.get("health") == "ok" and not r.get("lastError") for r in rules))
    for name in sorted({r["name"] for r in rules if r.get("type") == "recording"}):
        vals, desc = prom.values(name)
        check(f"recording rule {name}: {len(vals or {})} series", bool(vals), desc)

    # Alerts right now: the blackhole is down and the lossy host loses 30 %, both pending
    # (their `for` is longer than this test); nothing about the delay hosts or the exporter.
    res, desc = prom.query("ALERTS")
    got = sorted((s["metric"]["alertname"], s["metric"].get("instance", ""),
                  s["metric"].get("target", ""), s["metric"]["alertstate"]) for s in (res or []))
    want = sorted([
        ("ICMPTargetDown", bh, "", "pending"),
        ("ICMPStaticTargetDown", a.exporter, bh, "pending"),
        ("ICMPTargetHighLoss", loss, "", "pending"),
        ("ICMPStaticTargetHighLoss", a.exporter, loss, "pending"),
    ])
    check("ALERTS: exactly the blackhole's down and the lossy host's high-loss alerts, pending",
          got == want, f"want {want}\ngot  {got}\n{desc}")
    done()


# --------------------------------------------------------------------------------------
# The Grafana dashboard.

def walk_panels(panels):
    """Every panel, rows' nested panels (collapsed rows keep theirs inside) included."""
    for p in panels:
        yield p
        yield from walk_panels(p.get("panels", []))


def dashboard_queries(dash):
    """[{title, refId, where, expr, instant}] of every Prometheus query of every panel."""
    out = []
    for p in walk_panels(dash.get("panels", [])):
        for t in p.get("targets", []):
            if "expr" in t:
                out.append({"title": p.get("title"), "refId": t.get("refId"), "expr": t["expr"],
                            "where": f'panel {p.get("id")} "{p.get("title")}" {t.get("refId")}',
                            "instant": bool(t.get("instant")) and not t.get("range")})
    return out


def variable_query(v):
    q = v.get("query")
    return q.get("query", "") if isinstance(q, dict) else (q or "")


VAR_RE = re.compile(r"\$\{(\w+)(?::(\w+))?\}|\[\[(\w+)\]\]|\$(\w+)")


def interpolate(expr, values):
    """Grafana's variable syntaxes ($v, ${v}, ${v:fmt}, [[v]]); unknown ones are left as they
    are, so the caller sees them."""
    def sub(m):
        name = m.group(1) or m.group(3) or m.group(4)
        return values.get(name, m.group(0))
    return VAR_RE.sub(sub, expr)


def regex_value(vals):
    """A multi-value variable as Grafana's Prometheus data source writes it into a PromQL
    string: (v1|v2), regex metacharacters escaped with a backslash doubled for the string."""
    def esc(v):
        v = v.replace("\\", "\\\\\\\\")
        return re.sub(r"[$^*{}\[\]'+?.()|]", lambda m: "\\\\" + m.group(0), v)
    return "(" + "|".join(esc(v) for v in vals) + ")"


def lint(dash):
    """Static checks; returns the list of problems."""
    problems = []
    if not isinstance(dash.get("schemaVersion"), int) or dash["schemaVersion"] < 36:
        problems.append(f"schemaVersion {dash.get('schemaVersion')!r}: "
                        "want Grafana's current (>= 36)")
    for k in ("uid", "title"):
        if not dash.get(k):
            problems.append(f"no {k}")
    if dash.get("id") is not None:
        problems.append("id must be null (provisioning and import assign it)")
    tvars = dash.get("templating", {}).get("list", [])
    names = {v.get("name") for v in tvars}
    dsv = [v for v in tvars if v.get("type") == "datasource"]
    if len(dsv) != 1 or dsv[0].get("query") != "prometheus" or dsv[0].get("name") != "datasource":
        problems.append("want one data source variable `datasource` of type prometheus")
    for want in ("job", "instance", "target"):
        if want not in names:
            problems.append(f"no template variable {want}")
    ds = {"type": "prometheus", "uid": "${datasource}"}
    for v in tvars:
        if v.get("type") == "query":
            if v.get("datasource") != ds:
                problems.append(f"variable {v.get('name')}: datasource "
                                f"{v.get('datasource')}, want {ds}")
            if v.get("definition") != variable_query(v):
                problems.append(f"variable {v.get('name')}: definition and query differ")
    ids, rects = set(), []
    known = {"row", "timeseries", "stat", "state-timeline", "heatmap", "table", "bargauge", "gauge"}
    builtin = {"__interval", "__interval_ms", "__rate_interval", "__range", "__range_s",
               "__range_ms"}
    for p in walk_panels(dash.get("panels", [])):
        where = f'panel {p.get("id")} "{p.get("title")}"'
        if p.get("id") in ids:
            problems.append(f"{where}: duplicate id")
        ids.add(p.get("id"))
        if p.get("type") not in known:
            problems.append(f"{where}: unexpected type {p.get('type')}")
        g = p.get("gridPos", {})
        if not (g.get("w", 0) > 0 and g.get("h", 0) > 0 and g.get("x", -1) >= 0 and
                g.get("x", 0) + g.get("w", 0) <= 24 and g.get("y", -1) >= 0):
            problems.append(f"{where}: bad gridPos {g}")
        for (w2, g2) in rects:
            if (g["x"] < g2["x"] + g2["w"] and g2["x"] < g["x"] + g["w"] and
                    g["y"] < g2["y"] + g2["h"] and g2["y"] < g["y"] + g["h"]):
                problems.append(f"{where} overlaps {w2}")
        rects.append((where, g))
        if p.get("type") == "row":
            if p.get("targets"):
                problems.append(f"{where}: a row with queries")
            continue
        if p.get("datasource") != ds:
            problems.append(f"{where}: datasource {p.get('datasource')}, want {ds}")
        targets = p.get("targets", [])
        if not targets:
            problems.append(f"{where}: no query")
        refs = [t.get("refId") for t in targets]
        if len(set(refs)) != len(refs):
            problems.append(f"{where}: duplicate refId {refs}")
        for t in targets:
            if t.get("datasource") != ds:
                problems.append(f"{where} {t.get('refId')}: datasource {t.get('datasource')}")
            if not t.get("expr", "").strip():
                problems.append(f"{where} {t.get('refId')}: empty expr")
            if p.get("type") == "heatmap" and t.get("format") != "heatmap":
                problems.append(f"{where} {t.get('refId')}: a heatmap query needs format heatmap")
    exprs = [q["expr"] for q in dashboard_queries(dash)] + [variable_query(v) for v in tvars]
    for e in exprs:
        for m in VAR_RE.finditer(e):
            n = m.group(1) or m.group(3) or m.group(4)
            if n not in names and n not in builtin:
                problems.append(f"unknown variable ${n} in {e}")
    # What the dashboard must show (issue 6): both kinds of series, success/loss, RTT as
    # heatmaps from both histograms, TTL, replies by status, exporter health.
    heat = " ".join(t.get("expr", "") for p in walk_panels(dash.get("panels", []))
                    if p.get("type") == "heatmap" for t in p.get("targets", []))
    for metric in ("probe_icmp_rtt_seconds_bucket", "icmp_target_rtt_seconds_bucket"):
        if metric not in heat:
            problems.append(f"no heatmap of {metric}")
    alltext = " ".join(exprs)
    for metric in ("probe_success", "icmp_target_success", "probe_icmp_echoes_sent",
                   "icmp_target_echoes_sent_total", "probe_icmp_reply_hop_limit",
                   "icmp_target_reply_hop_limit", "probe_icmp_replies", "icmp_target_replies_total",
                   "up{", "icmp_exporter_probes_total", "icmp_exporter_probes_in_flight",
                   "icmp_exporter_http_requests_total",
                   "icmp_exporter_config_last_reload_successful",
                   "process_resident_memory_bytes", "process_cpu_seconds_total"):
        if metric not in alltext:
            problems.append(f"no query uses {metric}")
    return problems


def cmd_lint(a):
    try:
        dash = json.load(open(a.dashboard, encoding="utf-8"))
    except ValueError as e:
        check(f"{a.dashboard} is JSON", False, e)
        done()
    problems = lint(dash)
    n = len(dashboard_queries(dash))
    check(f"dashboard lint: schema {dash.get('schemaVersion')}, {n} queries, datasource variable, "
          "ids, layout, variables, content", not problems, "\n".join(problems))
    done()


# Queries that cannot return data in the lab, by (panel title, refId), with the reason. A
# listed query must parse and return no value, so a stale entry fails too. There is none
# today: the anomaly counters are exported at 0 and the alerts table shows the lab's
# pending alerts.
EXPECTED_EMPTY = {}


def cmd_dashboard(a):
    prom = Prom(a.url)
    dash = json.load(open(a.dashboard, encoding="utf-8"))
    now = time.time()
    span = max(int(now - a.start), 10)
    # Grafana's built-ins, for a 2 s scrape interval (SCRAPE_S): $__interval = 2 s steps,
    # $__rate_interval = 4 scrape intervals and more, $__range = the test's whole run.
    values = {"__interval": "2s", "__interval_ms": "2000", "__rate_interval": "10s",
              "__range": f"{span}s", "__range_s": str(span), "__range_ms": str(span * 1000)}
    # Template variables, in order (later ones use earlier ones), evaluated as Grafana does
    # (label_values -> /api/v1/label/NAME/values?match[]=SELECTOR) and set to all their
    # values, which is what "All" selects.
    lv = re.compile(r"^label_values\((?:(.+),\s*)?([a-zA-Z_][a-zA-Z0-9_]*)\)\s*$")
    chosen = {}
    for v in dash.get("templating", {}).get("list", []):
        if v.get("type") != "query":
            continue
        q = interpolate(variable_query(v), values)
        m = lv.match(q)
        if m:
            params = {"start": f"{a.start:.3f}", "end": f"{now:.3f}"}
            if m.group(1):
                params["match[]"] = m.group(1)
            data, desc = prom.api(f"/api/v1/label/{m.group(2)}/values", params)
            vals = sorted(data or [])
        elif q.startswith("query_result("):
            res, desc = prom.query(q[len("query_result("):-1])
            vals = sorted({json.dumps(s["metric"]) for s in (res or [])})
        else:
            vals, desc = [], f"unsupported variable query {q!r}"
        check(f"variable ${v['name']}: {q} -> {len(vals)} values {vals[:8]}", bool(vals),
              f"variable query: {variable_query(v)}\n{desc}")
        chosen[v["name"]] = vals
        values[v["name"]] = regex_value(vals) if vals else "__none__"
    # The values must be the test's: both jobs, the /probe hosts and the exporter, the
    # static targets.
    want_jobs = sorted(a.jobs.split(","))
    check(f"variable $job = the test's ICMP jobs {want_jobs}", chosen.get("job") == want_jobs,
          f"got {chosen.get('job')}")
    want_inst = sorted(a.instances.split(","))
    check(f"variable $instance = {want_inst}", chosen.get("instance") == want_inst,
          f"got {chosen.get('instance')}")
    want_tg = sorted(a.static_targets.split(","))
    check(f"variable $target = {want_tg}", chosen.get("target") == want_tg,
          f"got {chosen.get('target')}")

    queries = dashboard_queries(dash)
    check(f"dashboard has queries ({len(queries)})", len(queries) >= 20)
    for qd in queries:
        where, expr = qd["where"], qd["expr"]
        q = interpolate(expr, values)
        if VAR_RE.search(q):
            check(f"{where}: every variable substituted", False, f"{expr}\n-> {q}")
            continue
        if qd["instant"]:
            res, desc = prom.query(q)
        else:
            res, desc = prom.query_range(q, a.start, now, "2")
        finite = 0
        for s in res or []:
            pts = s.get("values") or [s.get("value")]
            finite += sum(1 for p in pts if p and not math.isnan(float(p[1])))
        why = EXPECTED_EMPTY.get((qd["title"], qd["refId"]))
        if why:
            check(f"{where}: parses, no data as expected ({why})", res is not None and finite == 0,
                  f"expression: {expr}\nsent: {q}\n{desc}")
            continue
        got = f"{len(res)} series, {finite} values" if res is not None else "query refused"
        check(f"{where}: parses, {got}", res is not None and finite > 0,
              f"expression: {expr}\nsent: {q}\n{desc}")
    done()


# --------------------------------------------------------------------------------------
# compare: blackbox_exporter and icmp_exporter side by side (test_blackbox.sh).

# What blackbox_compat.rules.yml must fire, for each exporter, with the test's shortened
# `for:`: (alert, host role or "exporter", phase label). The dead host fails, is slow (its
# probe waits for the whole deadline) and has a low 30-day uptime; the slow host is slow,
# in the probe and in its rtt phase; the live host raises nothing; each exporter's failed
# reload raises the reload alert, read under each one's metric name.
COMPARE_WANT = {
    ("BlackboxProbeFailed", "down", ""),
    ("BlackboxLowUptime30d", "down", ""),
    ("BlackboxSlowProbe", "down", ""),
    ("BlackboxSlowProbe", "slow", ""),
    ("BlackboxProbeSlowPing", "slow", "rtt"),
    ("BlackboxConfigurationReloadFailure", "exporter", ""),
}


def pairs(spec):
    return dict(item.split("=", 1) for item in spec.split(",") if item)


def cmd_compare(a):
    prom = Prom(a.url)
    hosts = pairs(a.hosts)        # role -> address
    exporters = pairs(a.exporters)  # exporter name -> its /metrics address
    jobs = pairs(a.jobs)          # job -> exporter name
    role_of = {addr: role for role, addr in hosts.items()}
    role_of.update({addr: "exporter" for addr in exporters.values()})

    def alerts(state):
        """{exporter name: {(alert, role, phase)}} of ALERTS in STATE, and the raw answer."""
        res, desc = prom.query(f'ALERTS{{alertstate="{state}"}}')
        got = {name: set() for name in exporters}
        other = []
        for s in res or []:
            m = s["metric"]
            name = jobs.get(m.get("job"))
            role = role_of.get(m.get("instance"))
            if name is None or role is None:
                other.append(m)
                continue
            got[name].add((m["alertname"], role, m.get("phase", "")))
        return got, other, res is not None, desc

    # Wait (bounded) until both exporters' firing alerts are the expected ones; note when
    # each got there.
    t0 = time.monotonic()
    reached = {}
    got, other, ok, desc = {}, [], False, ""
    while time.monotonic() - t0 < a.timeout:
        got, other, ok, desc = alerts("firing")
        for name in exporters:
            if name not in reached and got[name] == COMPARE_WANT:
                reached[name] = time.monotonic() - t0
        if len(reached) == len(exporters):
            break
        time.sleep(0.5)
    fmt = lambda s: "\n".join(f"  {x}" for x in sorted(s))
    for name in exporters:
        check(f"{name}: the compatible alerts fire for the dead and the slow host, and the "
              f"failed reload" + (f" ({reached[name]:.1f} s)" if name in reached else
                                  f" (not within {a.timeout:g} s)"),
              name in reached,
              f"want:\n{fmt(COMPARE_WANT)}\ngot:\n{fmt(got.get(name, set()))}\n"
              f"missing: {sorted(COMPARE_WANT - got.get(name, set()))}\n"
              f"extra: {sorted(got.get(name, set()) - COMPARE_WANT)}\n{desc}")
    names = sorted(exporters)
    check(f"{' and '.join(names)} fire the same alerts for the same hosts",
          ok and all(got[n] == got[names[0]] for n in names), desc)
    check("no alert about anything else", ok and not other, json.dumps(other, indent=1))
    pending, other_p, ok, desc = alerts("pending")
    check("nothing pending (in particular nothing about the live host)",
          ok and not other_p and all(not v for v in pending.values()), desc)

    # Every scrape succeeded (a probe of the dead host fits the scrape timeout), and
    # counted.
    vals, desc = prom.values("min_over_time(up[1h])")
    cnt, desc2 = prom.values("count_over_time(up[1h])")
    got_up = {(dict(k).get("job"), dict(k).get("instance")): v for k, v in (vals or {}).items()}
    got_n = {(dict(k).get("job"), dict(k).get("instance")): v for k, v in (cnt or {}).items()}
    check(f"up == 1 at every scrape of the {len(got_up)} targets (scrapes: "
          f"{sorted(int(v) for v in got_n.values())})",
          len(got_up) == len(exporters) * (1 + len(hosts)) and
          all(v == 1 for v in got_up.values()),
          f"{desc}\n{desc2}")

    # Each firing alert carries its runbook link.
    data, desc = prom.api("/api/v1/alerts", {})
    firing = [x for x in (data or {}).get("alerts", []) if x.get("state") == "firing"]
    bad = [x for x in firing if not x.get("annotations", {}).get("runbook_url", "")
           .startswith("README.md#")]
    check(f"every firing alert has a runbook_url ({len(firing)} alerts)",
          firing and not bad, json.dumps(bad or data, indent=1)[:3000])

    # The rtt phase: blackbox's meaning for both, the reply's round trip and 0 without one
    # (the dead host's series exists and is 0 at every scrape).
    by_job = {}
    for job, name in jobs.items():
        by_job.setdefault(name, []).append(job)
    delay = float(env("NETLAB_DELAY_MS")) / 1000
    late = float(env("NETLAB_LATE_MS")) / 1000
    for name in names:
        jsel = "|".join(by_job[name])
        sel = f'job=~"{jsel}",phase="rtt"'
        dead = f'probe_icmp_duration_seconds{{{sel},instance="{hosts["down"]}"}}[1h]'
        hi, d1 = prom.one(f"max_over_time({dead})")
        lo, d2 = prom.one(f"min_over_time({dead})")
        n, d3 = prom.one(f"count_over_time({dead})")
        ok_n = n is not None and n >= 2
        check(f"{name}: probe_icmp_duration_seconds{{phase=\"rtt\"}} of the dead host is 0 at "
              f"every scrape ({n if n is None else int(n)} scrapes)",
              ok_n and hi == 0 and lo == 0, f"{d1}\n{d2}\n{d3}")
        for role, want, tol in (("live", delay, 0.005), ("slow", late, 0.1)):
            expr = (f'avg_over_time(probe_icmp_duration_seconds{{{sel},'
                    f'instance="{hosts[role]}"}}[1h])')
            v, d = prom.one(expr)
            check(f"{name}: rtt of the {role} host {v if v is None else round(v * 1000, 2)} ms "
                  f"= {want * 1000:g} ms ± {tol * 1000:g}", near(v, want, tol), d)
    done()


# --------------------------------------------------------------------------------------
# ruleslint: runbook links and job selectors of the shipped rule files.

def markdown_anchors(text):
    """The anchors GitHub gives a Markdown file's headings (code blocks skipped): lower
    case, punctuation but '-' and '_' removed, spaces as '-', '-N' on repeats."""
    anchors, seen, fence = set(), {}, None
    for line in text.splitlines():
        m = re.match(r"^\s*(```|~~~)", line)
        if m:
            fence = None if fence == m.group(1) else (fence or m.group(1))
            continue
        m = re.match(r"^#{1,6}\s+(.*?)\s*#*\s*$", line)
        if m and not fence:
            slug = re.sub(r"[^\w\- ]", "", m.group(1).lower()).replace(" ", "-")
            n = seen.get(slug, 0)
            seen[slug] = n + 1
            anchors.add(slug if n == 0 else f"{slug}-{n}")
    return anchors


def rule_blocks(text):
    """[(kind, name, lines)] of a rules file, one per `- alert:` / `- record:` entry, by
    its lines (our files' layout: one rule per list item under `rules:`)."""
    blocks = []
    for line in text.splitlines():
        m = re.match(r"^\s*- (alert|record):\s*(\S+)", line)
        if m:
            blocks.append((m.group(1), m.group(2), []))
        elif re.match(r"^\s*- name:", line):
            blocks.append(("group", "", []))
        elif blocks:
            blocks[-1][2].append(line)
    return [b for b in blocks if b[0] != "group"]


JOB_MATCHER = re.compile(r"\bjob\s*(=~|!~|!=|=)\s*[\"'`]")


def cmd_ruleslint(a):
    anchors = markdown_anchors(open(a.readme, encoding="utf-8").read())
    for path in a.rules:
        text = open(path, encoding="utf-8").read()
        name = os.path.basename(path)
        alerts = [b for b in rule_blocks(text) if b[0] == "alert"]
        check(f"{name}: {len(alerts)} alerts", len(alerts) > 0)
        for _, alert, lines in alerts:
            urls = [m.group(1) for l in lines
                    for m in [re.match(r"^\s*runbook_url:\s*[\"']?([^\"'\s]+)", l)] if m]
            want = f"README.md#{alert.lower()}"
            check(f"{name} {alert}: runbook_url {want}, a heading of the README",
                  urls == [want] and alert.lower() in anchors,
                  f"runbook_url lines: {urls}; README has a heading with anchor "
                  f"{alert.lower()!r}: {alert.lower() in anchors}")
        code = "\n".join(re.sub(r"#.*", "", l) for l in text.splitlines())
        bad = [l.strip() for l in code.splitlines() if JOB_MATCHER.search(l)]
        check(f"{name}: no rule selects a job by name", not bad, "\n".join(bad))
    done()


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sp = ap.add_subparsers(dest="cmd", required=True)
    p = sp.add_parser("config")
    p.add_argument("shipped")
    p.add_argument("out")
    p.add_argument("--prometheus", required=True)
    p.add_argument("--exporter", required=True)
    p.add_argument("--rules-dir", required=True)
    p.add_argument("--probe-targets", required=True)
    p = sp.add_parser("ready")
    p.add_argument("url")
    p.add_argument("--timeout", type=float, default=30)
    p = sp.add_parser("wait")
    p.add_argument("url")
    p.add_argument("--samples", type=int, required=True)
    p.add_argument("--timeout", type=float, required=True)
    p.add_argument("--targets", required=True)
    p = sp.add_parser("lab")
    p.add_argument("url")
    p.add_argument("--exporter", required=True)
    p.add_argument("--prometheus", required=True)
    p = sp.add_parser("dashboard")
    p.add_argument("url")
    p.add_argument("dashboard")
    p.add_argument("--start", type=float, required=True)
    p.add_argument("--jobs", required=True)
    p.add_argument("--instances", required=True)
    p.add_argument("--static-targets", required=True)
    p = sp.add_parser("lint")
    p.add_argument("dashboard")
    p = sp.add_parser("compare")
    p.add_argument("url")
    p.add_argument("--hosts", required=True)
    p.add_argument("--exporters", required=True)
    p.add_argument("--jobs", required=True)
    p.add_argument("--timeout", type=float, required=True)
    p = sp.add_parser("ruleslint")
    p.add_argument("readme")
    p.add_argument("rules", nargs="+")
    a = ap.parse_args()
    {"config": cmd_config, "ready": cmd_ready, "wait": cmd_wait, "lab": cmd_lab,
     "dashboard": cmd_dashboard, "lint": cmd_lint, "ruleslint": cmd_ruleslint,
     "compare": cmd_compare}[a.cmd](a)


if __name__ == "__main__":
    main()
