"""Adversarial traces: deterministic wrong options, offline templates, the scoring-core
check, and the model-based generators (a canned local OpenAI-compatible server, and a
tiny random transformers model) with retry / reject accounting and resume."""

from __future__ import annotations

import copy
import json
import re
import threading
import time
from collections import Counter
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from lm_eval_medsplit.adversarial import (
    N_TRACES,
    OFFLINE_SOURCE,
    TraceInputError,
    add_offline_traces,
    check_record_traces,
    check_trace,
    check_trace_input,
    offline_trace,
    wrong_letter,
    wrong_letters,
)
from lm_eval_medsplit.cli import main
from lm_eval_medsplit.prompts import trace_generation_messages
from lm_eval_medsplit.schema import MCQRecord
from lm_eval_medsplit.sources import load_jsonl_records, write_jsonl
from lm_eval_medsplit.trace_generation import (
    META_KEY,
    EndpointGenerator,
    GenerationError,
    chat_completions_url,
    generate_traces,
)


@pytest.fixture(scope="module")
def medqa(raw_source):
    return raw_source.load("medqa")[0]


@pytest.fixture(scope="module")
def medxpertqa(raw_source):
    return raw_source.load("medxpertqa")[0]


# --------------------------------------------------------------------------- core


def test_wrong_letters_deterministic_distinct_never_gold(medqa, medxpertqa, raw_source):
    pubmed = raw_source.load("pubmedqa")[0]
    for recs in (medqa, medxpertqa, pubmed):
        for r in recs[:300]:
            letters = wrong_letters(r, N_TRACES)
            assert letters == [wrong_letter(r, k) for k in range(N_TRACES)]
            assert r.answer_idx not in letters
            n_wrong = len(r.options) - 1
            assert len(set(letters)) == min(N_TRACES, n_wrong)  # pubmedqa: 2 wrong options
            assert wrong_letters(copy.deepcopy(r)) == letters
    # the choice varies with the question: not always the same letter
    firsts = Counter(wrong_letter(r, 0) for r in medxpertqa)
    assert len(firsts) >= 8 and max(firsts.values()) < 0.2 * len(medxpertqa)
    # labels and traces do not change it (content hash excludes them)
    r = copy.deepcopy(medqa[0])
    before = wrong_letters(r)
    r.is_reasoning, r.reasoning_prob, r.adversarial_traces = True, 0.9, ["x"]
    assert wrong_letters(r) == before


def test_offline_traces_all_pass_the_check_on_real_data(medqa, medxpertqa):
    recs = copy.deepcopy(medqa) + copy.deepcopy(medxpertqa[:600])
    assert add_offline_traces(recs) == len(recs)
    for r in recs:
        assert r.adversarial_source == OFFLINE_SOURCE and len(r.adversarial_traces) == N_TRACES
        assert all(ok for _, ok, _ in check_record_traces(r)), r.id
    r = recs[0]
    assert r.adversarial_traces[1] == offline_trace(r, 1)
    assert r.adversarial_traces[1].endswith(f"Answer: {wrong_letter(r, 1)}")
    # existing traces are kept unless overwrite
    assert add_offline_traces(recs[:5]) == 0
    assert add_offline_traces(recs[:5], n=2, overwrite=True) == 5 and len(recs[0].adversarial_traces) == 2


def test_check_trace_rejects_gold_and_wrong_and_unparsed(medqa):
    r = medqa[0]
    bad = wrong_letter(r, 0)
    other = next(x for x in r.options if x not in (bad, r.answer_idx))
    assert check_trace(r, f"Reasoning...\nAnswer: {bad}", bad) == (True, "ok")
    ok, why = check_trace(r, f"It must be this.\nAnswer: {r.answer_idx}", bad)
    assert not ok and why == f"concludes with the gold letter {r.answer_idx}"
    ok, why = check_trace(r, f"Therefore the answer is {other}.", bad)
    assert not ok and why == f"concludes with {other}, intended {bad}"
    ok, why = check_trace(r, "I cannot decide between these.", bad)
    assert not ok and why.startswith("no final answer")
    assert check_trace(r, "   ", bad) == (False, "empty trace")
    # the last committed answer wins, as everywhere else in the package
    ok, _ = check_trace(r, f"At first the answer is {bad}. On reflection the answer is {r.answer_idx}.", bad)
    assert not ok


def test_bad_input_gives_named_errors(medqa):
    r = copy.deepcopy(medqa[0])
    r.answer_idx = None
    with pytest.raises(TraceInputError, match="field 'answer_idx' is missing"):
        check_trace_input(r)
    with pytest.raises(TraceInputError, match="no gold answer_idx"):
        wrong_letter(r, 0)
    one = MCQRecord("x1", "mine", "Which one?", {"A": "only"}, answer_idx="A")
    with pytest.raises(TraceInputError, match="'options' needs at least 2"):
        check_trace_input(one)
    with pytest.raises(TraceInputError, match="no wrong option"):
        wrong_letter(one, 0)
    empty = MCQRecord("x2", "mine", "  ", {"A": "a", "B": "b"}, answer_idx="A")
    with pytest.raises(TraceInputError, match="'question' is empty"):
        check_trace_input(empty)
    # the driver refuses up front, naming every bad record, before any request
    with pytest.raises(TraceInputError, match=r"(?s)3 record\(s\).*x1.*x2") as e:
        generate_traces([r, one, empty], _NeverCalled(), progress=False)
    assert medqa[0].id in str(e.value)


class _NeverCalled:
    source = "endpoint:none#none"

    def generate(self, jobs):
        raise AssertionError("no request may be made for invalid input")

    def counters(self):
        return {}


def test_trace_prompt_names_the_wrong_option(medqa):
    r = medqa[3]
    x = wrong_letter(r, 2)
    msgs = trace_generation_messages(r, x)
    assert [m["role"] for m in msgs] == ["system", "user"]
    assert f"option {x}" in msgs[1]["content"] and r.options[x] in msgs[1]["content"]
    assert msgs[1]["content"].rstrip().endswith(f'"Answer: {x}".')
    assert r.question.strip()[:50] in msgs[1]["content"]


def test_chat_completions_url():
    assert chat_completions_url("http://h:8000") == ("http://h:8000/v1", "http://h:8000/v1/chat/completions")
    assert chat_completions_url("http://h:8000/v1/") == ("http://h:8000/v1", "http://h:8000/v1/chat/completions")
    assert chat_completions_url("https://x/v1/chat/completions")[0] == "https://x/v1"
    with pytest.raises(ValueError, match="http"):
        chat_completions_url("h:8000")


# --------------------------------------------------------------------------- canned endpoint


class CannedEndpoint:
    """A real OpenAI-compatible HTTP server on 127.0.0.1 (stdlib, threaded) answering
    ``/v1/chat/completions`` with canned traces. ``behaviour(rec_index, k, call_no)``
    returns ``"ok"`` (concludes with the requested letter), ``"gold"`` (concludes with the
    gold letter), ``"none"`` (no final answer) or an int HTTP status."""

    def __init__(self, records, behaviour, delay=0.0, model="canned-model"):
        self.by_question = {r.question.strip()[:120]: (i, r) for i, r in enumerate(records)}
        self.behaviour = behaviour
        self.delay = delay
        self.model = model
        self.calls: Counter = Counter()  # (rec_index, k) -> calls
        self.log: list[tuple[int, int]] = []
        self.inflight = 0
        self.max_inflight = 0
        self.seeds: list[int] = []
        self.auth: set = set()
        self.lock = threading.Lock()
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *a):
                pass

            def _send(self, status, obj):
                body = json.dumps(obj).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def do_GET(self):
                if self.path == "/v1/models":
                    self._send(200, {"object": "list", "data": [{"id": server.model}]})
                else:
                    self._send(404, {"error": "not found"})

            def do_POST(self):
                n = int(self.headers.get("Content-Length", 0))
                req = json.loads(self.rfile.read(n))
                server.auth.add(self.headers.get("Authorization"))
                with server.lock:
                    server.inflight += 1
                    server.max_inflight = max(server.max_inflight, server.inflight)
                try:
                    time.sleep(server.delay)
                    status, obj = server.answer(req)
                finally:
                    with server.lock:
                        server.inflight -= 1
                self._send(status, obj)

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/v1"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    def answer(self, req):
        user = req["messages"][-1]["content"]
        letter = re.search(r"argues that option ([A-Z]) ", user).group(1)
        i, rec = next(v for q, v in self.by_question.items() if user.startswith(q))
        k = next(k for k in range(10) if wrong_letter(rec, k) == letter)
        with self.lock:
            self.calls[(i, k)] += 1
            call_no = self.calls[(i, k)]
            self.log.append((i, k))
            self.seeds.append(req.get("seed"))
        what = self.behaviour(i, k, call_no)
        if isinstance(what, int):
            return what, {"error": {"message": "try again"}}
        # "ok" ends with the final line the prompt asks for (its style's answer form)
        final = re.search(r'End with the line "(.*)"\.', user).group(1)
        text = {"ok": f"Step 1: the findings fit option {letter}.\n{final}",
                "gold": f"On balance this is option {rec.answer_idx}.\nAnswer: {rec.answer_idx}",
                "none": "The findings are hard to interpret."}[what]
        return 200, {"id": "x", "object": "chat.completion", "model": req["model"],
                     "choices": [{"index": 0, "finish_reason": "stop",
                                  "message": {"role": "assistant", "content": text}}]}

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.httpd.shutdown()
        self.httpd.server_close()


def mixed_behaviour(i, k, call_no):
    """Five kinds of record, by index mod 5."""
    kind = i % 5
    if kind == 0:
        return "ok"
    if kind == 1:  # first try concludes with the gold letter, then fine
        return "gold" if call_no == 1 else "ok"
    if kind == 2:  # trace 0 fine; traces 1 and 2 always conclude with gold: rejected
        return "ok" if k == 0 else "gold"
    if kind == 3:  # the server is busy once, then fine (HTTP retry, not a new attempt)
        return 503 if call_no == 1 else "ok"
    return "none" if call_no == 1 else "ok"  # no final answer, then fine


@pytest.fixture()
def ten(medqa):
    return copy.deepcopy(medqa[:10])


def test_endpoint_retry_reject_counts_and_concurrency(ten, tmp_path):
    out = tmp_path / "traces.jsonl"
    with CannedEndpoint(ten, mixed_behaviour, delay=0.03) as srv:
        gen = EndpointGenerator(srv.url, concurrency=4, backoff=0.01, api_key="sk-test")
        assert gen.model == "canned-model"  # from GET /v1/models
        assert gen.source == f"endpoint:{srv.url}#canned-model"
        recs, st = generate_traces(ten, gen, max_attempts=3, out=out, progress=False)
        gen.close()
    assert st.requested == 30 and st.accepted == 26 and st.rejected == 4
    assert st.accepted + st.rejected == st.requested
    # attempts: kind0 6, kind1 12, kind2 2+12, kind3 6 (HTTP retry is no attempt), kind4 12
    assert st.attempts == 50 and st.retries == 20 and st.errors == 0
    assert st.reasons == {"concludes with the gold letter": 18, "no final answer": 6}
    assert st.generator["http_retries"] == 6
    assert sum(srv.calls.values()) == 50 + 6
    assert 2 <= srv.max_inflight <= 4  # bounded concurrency, and really concurrent
    assert srv.auth == {"Bearer sk-test"}
    # reproducible sampling: the seed is a function of (record, k, attempt)
    assert len(set(srv.seeds)) > 40
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    assert [r["id"] for r in rows] == [r.id for r in ten]
    for i, r in enumerate(recs):
        st_r = r.meta[META_KEY]
        assert r.adversarial_source == gen.source
        assert st_r["letters"] == wrong_letters(r)
        if i % 5 == 2:
            assert st_r["status"] == ["ok", "rejected", "rejected"]
            assert r.adversarial_traces[1:] == ["", ""]  # positions kept: trace k argues for letter k
            assert st_r["attempts"] == [1, 3, 3]
            assert st_r["reasons"][1] == f"concludes with the gold letter {r.answer_idx}"
        else:
            assert st_r["status"] == ["ok"] * 3
            assert all(ok for _, ok, _ in check_record_traces(r))
            assert st_r["attempts"] == [1 if i % 5 in (0, 3) else 2] * 3


def test_endpoint_resume_skips_finished_rows(ten, tmp_path):
    out = tmp_path / "traces.jsonl"
    with CannedEndpoint(ten, mixed_behaviour) as srv:
        gen = EndpointGenerator(srv.url, "m1", concurrency=3, backoff=0.0)
        _, st1 = generate_traces(copy.deepcopy(ten[:6]), gen, out=out, progress=False)
        first = out.read_text()
        n_calls = len(srv.log)
        recs, st2 = generate_traces(copy.deepcopy(ten), gen, out=out, progress=False)
        second_run = srv.log[n_calls:]
        gen.close()
    assert st1.records == 6 and st1.resumed == 0
    # records 0,1,3,4,5 were finished: skipped; record 2 (one trace kept) is partial
    assert st2.resumed == 5 and st2.partial == 1
    assert st2.requested == 2 + 4 * 3
    asked = {i for i, _ in second_run}
    assert asked == {2, 6, 7, 8, 9}
    assert {k for i, k in second_run if i == 2} == {1, 2}  # only the missing slots
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    assert [r["id"] for r in rows] == [r.id for r in ten]
    # finished rows are written back unchanged
    before = {json.loads(line)["id"]: json.loads(line) for line in first.splitlines()}
    for r in rows:
        if r["id"] in before and ten.index(next(x for x in ten if x.id == r["id"])) % 5 != 2:
            assert r == before[r["id"]]
    # a third run has nothing left but the always-rejected slots
    with CannedEndpoint(ten, mixed_behaviour) as srv:
        gen = EndpointGenerator(srv.url, "m2", backoff=0.0)  # another model...
        _, st3 = generate_traces(copy.deepcopy(ten), gen, out=out, progress=False)
        gen.close()
    assert st3.resumed == 0  # ...so nothing is reused across sources


def test_resume_after_interruption(ten, tmp_path):
    out = tmp_path / "t.jsonl"
    ok_all = lambda i, k, c: "ok"  # noqa: E731

    class Stop(Exception):
        pass

    def stop_after_first(chunk):
        raise Stop

    with CannedEndpoint(ten, ok_all) as srv:
        gen = EndpointGenerator(srv.url, "m", concurrency=2)
        with pytest.raises(Stop):
            generate_traces(copy.deepcopy(ten), gen, out=out, chunk_size=4, progress=False,
                            on_chunk=stop_after_first)
        part = out.with_name(out.name + ".partial")
        assert not out.exists()  # --out is written only when the run completes...
        assert len(part.read_text().splitlines()) == 4  # ...the finished chunk is in the resume file
        # simulate a kill in the middle of a line: a truncated last line is ignored...
        with open(part, "a") as f:
            f.write('{"id": "half')
        # ...and cut off before appending, so a second interrupted run leaves a file that
        # still resumes (it used to write onto the half line, and then every run failed)
        with pytest.raises(Stop):
            generate_traces(copy.deepcopy(ten), gen, out=out, chunk_size=4, progress=False,
                            on_chunk=stop_after_first)
        assert [json.loads(line)["id"] for line in part.read_text().splitlines()] == [r.id for r in ten[:8]]
        n = len(srv.log)
        _, st = generate_traces(copy.deepcopy(ten), gen, out=out, chunk_size=4, progress=False)
        gen.close()
        assert st.resumed == 8 and st.requested == 6 and st.accepted == 6
        assert len(srv.log) - n == 6
    assert len(out.read_text().splitlines()) == 10 and not part.exists()


def test_on_reject_offline_marks_mixed_source(ten, tmp_path):
    with CannedEndpoint(ten, lambda i, k, c: "gold" if k == 2 else "ok") as srv:
        gen = EndpointGenerator(srv.url, "m", concurrency=4)
        recs, st = generate_traces(copy.deepcopy(ten[:4]), gen, max_attempts=2,
                                   on_reject="offline", progress=False)
        gen.close()
    assert st.rejected == 4 and st.fallback_offline == 4 and st.accepted == 8
    for r in recs:
        assert r.adversarial_source == f"{gen.source}+{OFFLINE_SOURCE}"
        assert r.meta[META_KEY]["status"] == ["ok", "ok", "offline"]
        assert r.adversarial_traces[2] == offline_trace(r, 2)
        assert all(ok for _, ok, _ in check_record_traces(r))


def test_http_errors_are_counted_not_fatal(ten):
    # 400 is not retried; a 503 forever exhausts the HTTP retries: both are attempt errors
    beh = lambda i, k, c: 400 if i == 0 else (503 if i == 1 else "ok")  # noqa: E731
    with CannedEndpoint(ten[:3], beh) as srv:
        gen = EndpointGenerator(srv.url, "m", concurrency=2, http_retries=2, backoff=0.0)
        recs, st = generate_traces(copy.deepcopy(ten[:3]), gen, max_attempts=2, progress=False)
        gen.close()
    assert st.rejected == 6 and st.accepted == 3 and st.errors == 12
    assert srv.calls[(0, 0)] == 2 and srv.calls[(1, 0)] == 2 * 3
    assert st.generator["http_errors"] == 12 and st.generator["http_retries"] == 2 * 6
    assert "HTTP 400" in recs[0].meta[META_KEY]["reasons"][0]
    assert "gave up after 3" in recs[1].meta[META_KEY]["reasons"][0]


def test_endpoint_unreachable_is_a_named_error():
    with pytest.raises(GenerationError, match="gave up"):
        EndpointGenerator("http://127.0.0.1:9", http_retries=1, backoff=0.0, timeout=2)


# --------------------------------------------------------------------------- CLI


def test_cli_offline_and_endpoint(ten, tmp_path, capsys):
    inp = tmp_path / "in.jsonl"
    write_jsonl(ten, inp)
    out = tmp_path / "off.jsonl"
    assert main(["adversarial", "generate", str(inp), "--out", str(out), "--offline"]) == 0
    recs, rep = load_jsonl_records(out, strict=True)
    assert rep.n_records == 10 and all(r.adversarial_source == OFFLINE_SOURCE for r in recs)
    assert [r.adversarial_traces for r in recs] == [[offline_trace(x, k) for k in range(3)] for x in ten]
    assert "30 accepted" in capsys.readouterr().out

    out2 = tmp_path / "ep.jsonl"
    with CannedEndpoint(ten, mixed_behaviour) as srv:
        args = ["adversarial", "generate", str(inp), "--out", str(out2), "--endpoint", srv.url,
                "--concurrency", "3", "--json", "--no-progress"]
        assert main(args) == 0
        st = json.loads(capsys.readouterr().out)
        assert st["accepted"] == 26 and st["rejected"] == 4 and st["source"].endswith("#canned-model")
        assert main(args) == 0  # resume: only the 4 rejected slots are asked again
        st = json.loads(capsys.readouterr().out)
        assert st["resumed"] == 8 and st["partial"] == 2 and st["requested"] == 4
    recs, _ = load_jsonl_records(out2, strict=True)
    assert recs[2].adversarial_traces[1] == "" and recs[0].adversarial_traces[0].endswith(
        f"Answer: {wrong_letter(recs[0], 0)}")
    # check: every trace of a file read by the scoring core
    assert main(["adversarial", "check", str(out), "--json"]) == 0
    chk = json.loads(capsys.readouterr().out)
    assert chk["traces"] == 30 and chk["ok"] == 30
    assert main(["adversarial", "check", str(out2), "--json"]) == 1
    chk = json.loads(capsys.readouterr().out)
    assert chk["ok"] == 26 and chk["failed"] == 4


def test_cli_offline_paper_style_ends_in_boxed_and_reruns_identically(tmp_path, capsys):
    """`medsplit adversarial generate --offline --style paper` on the README's example file:
    every trace ends with \\boxed{wrong letter}, the paper scorer reads it, the counts
    record the style, and a re-run writes the same bytes."""
    from lm_eval_medsplit.scoring import extract_answer

    inp = Path(__file__).resolve().parents[1] / "examples" / "mine.jsonl"
    src, _ = load_jsonl_records(inp, strict=True)
    out = tmp_path / "paper.jsonl"
    args = ["adversarial", "generate", str(inp), "--out", str(out), "--offline", "--style",
            "paper", "--json"]
    assert main(args) == 0
    st = json.loads(capsys.readouterr().out)
    assert st["style"] == "paper" and st["records"] == len(src) == 12 and st["accepted"] == 36
    recs, _ = load_jsonl_records(out, strict=True)
    for r in recs:
        letters = wrong_letters(r)
        assert [t.splitlines()[-1] for t in r.adversarial_traces] == [
            f"The final answer is \\boxed{{{x}}}." for x in letters]
        assert "Answer:" not in "".join(r.adversarial_traces)
        ex = [extract_answer(t, r.options, style="paper") for t in r.adversarial_traces]
        assert [(e.letter, e.method) for e in ex] == [(x, "boxed") for x in letters]
        assert r.adversarial_traces == [offline_trace(r, k, style="paper") for k in range(3)]
    first = out.read_bytes()
    assert main(args) == 0 and out.read_bytes() == first
    capsys.readouterr()
    assert main(["adversarial", "check", str(out), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["ok"] == 36
    # the default (cot) differs only in the last line of each trace, and says so
    cot = tmp_path / "cot.jsonl"
    assert main(["adversarial", "generate", str(inp), "--out", str(cot), "--offline"]) == 0
    assert "(cot style)" in capsys.readouterr().out
    for a, b in zip(load_jsonl_records(cot)[0], recs):
        for ta, tb, x in zip(a.adversarial_traces, b.adversarial_traces, wrong_letters(a)):
            assert ta.splitlines()[:-1] == tb.splitlines()[:-1] and ta.endswith(f"Answer: {x}")
    with pytest.raises(SystemExit):
        main(["adversarial", "generate", str(inp), "--out", str(cot), "--offline", "--style", "boxed"])
    assert "invalid choice: 'boxed'" in capsys.readouterr().err


def test_cli_endpoint_style_is_recorded_and_not_resumed_across_styles(ten, tmp_path, capsys):
    """Model traces asked for in the paper style end in \\boxed{X}; the style is in the
    counts and in each record's meta; a re-run in another style asks for every trace again
    instead of keeping traces that end in the other form."""
    inp = tmp_path / "in.jsonl"
    write_jsonl(ten[:4], inp)
    out = tmp_path / "ep.jsonl"
    with CannedEndpoint(ten[:4], lambda i, k, c: "ok") as srv:
        base = ["adversarial", "generate", str(inp), "--out", str(out), "--endpoint", srv.url,
                "--json", "--no-progress"]
        assert main(base + ["--style", "paper"]) == 0
        st = json.loads(capsys.readouterr().out)
        assert st["style"] == "paper" and st["accepted"] == 12 and st["requested"] == 12
        recs, _ = load_jsonl_records(out, strict=True)
        assert all(r.meta[META_KEY]["style"] == "paper" for r in recs)
        assert all(t.endswith(f"\\boxed{{{x}}}.") for r in recs
                   for t, x in zip(r.adversarial_traces, wrong_letters(r)))
        assert main(base + ["--style", "paper"]) == 0  # same style: everything resumed
        assert json.loads(capsys.readouterr().out)["resumed"] == 4 and len(srv.log) == 12
        assert main(base) == 0  # cot: asked for again, none kept from the paper run
        st = json.loads(capsys.readouterr().out)
        assert st["style"] == "cot" and st["resumed"] == 0 and st["requested"] == 12
        assert len(srv.log) == 24
        recs, _ = load_jsonl_records(out, strict=True)
        assert all(r.meta[META_KEY]["style"] == "cot" for r in recs)
        assert all(t.endswith(f"Answer: {x}") for r in recs
                   for t, x in zip(r.adversarial_traces, wrong_letters(r)))
        # a build from this file knows its traces' style from the records' meta ...
        from lm_eval_medsplit.build import BuildError, build

        kept = build(out, tmp_path / "b", progress=False)
        assert kept.configs[0].entry["traces"]["style"] == "cot"
        with pytest.raises(BuildError, match="--style paper but 4 record.s. keep the source's cot-style"):
            build(out, tmp_path / "b2", style="paper", progress=False)
        # ... and makes model traces in the style asked for
        gen = EndpointGenerator(srv.url)
        res = build(out, tmp_path / "b3", traces=gen, style="paper", retrace=True, progress=False)
        gen.close()
    assert res.manifest["traces"]["style"] == "paper" == res.configs[0].entry["traces"]["style"]
    assert all(r.meta[META_KEY]["style"] == "paper" and all(
        t.endswith(f"\\boxed{{{x}}}.") for t, x in zip(r.adversarial_traces, wrong_letters(r)))
        for r in res.configs[0].records)


def test_cli_from_source_and_benchmark(raw_dir, tmp_path, capsys):
    out = tmp_path / "mb.jsonl"
    assert main(["adversarial", "generate", "--source", str(raw_dir), "-b", "medbullets_op4",
                 "--out", str(out), "--offline", "--n", "2", "--json"]) == 0
    st = json.loads(capsys.readouterr().out)
    assert st["records"] == 308 and st["accepted"] == 616 and st["rejected"] == 0
    recs, _ = load_jsonl_records(out, strict=True)
    assert all(len(r.adversarial_traces) == 2 and r.benchmark == "medbullets_op4" for r in recs)


def test_cli_bad_input(tmp_path, capsys):
    inp = tmp_path / "in.jsonl"
    inp.write_text('{"id": "1", "question": "Which?", "options": ["a", "b"]}\n')
    assert main(["adversarial", "generate", str(inp), "--out", str(tmp_path / "o.jsonl"),
                 "--offline"]) == 2
    assert "field 'answer_idx' is missing" in capsys.readouterr().err
    assert main(["adversarial", "generate", str(tmp_path / "nope.jsonl"), "--out",
                 str(tmp_path / "o.jsonl"), "--offline"]) == 2
    assert "no such file" in capsys.readouterr().err
    assert main(["adversarial", "generate", "--out", str(tmp_path / "o.jsonl"), "--offline"]) == 2
    assert "--source and --benchmark" in capsys.readouterr().err
    # counts below one are refused by the parser
    with pytest.raises(SystemExit):
        main(["adversarial", "generate", str(inp), "--out", str(tmp_path / "o.jsonl"), "--offline",
              "--n", "0"])
    assert "must be at least 1, got 0" in capsys.readouterr().err
    # --lenient skips (and counts) records that cannot get traces; strict names them all
    inp.write_text('{"id": "1", "question": "Which?", "options": ["a", "b"]}\n'
                   '{"id": "2", "question": "Which?", "options": ["a", "b"], "answer_idx": "B"}\n'
                   '{"id": "3", "question": "Which?", "options": ["a", "b", "c"]}\n')
    out = tmp_path / "o.jsonl"
    assert main(["adversarial", "generate", str(inp), "--out", str(out), "--offline", "--strict"]) == 2
    err = capsys.readouterr().err
    assert "2 record(s) cannot get adversarial traces" in err and "record '3' of in" in err
    assert main(["adversarial", "generate", str(inp), "--out", str(out), "--offline", "--lenient"]) == 0
    assert "skipped 2 record(s) that cannot get traces; the first: record '1' of in" in capsys.readouterr().err
    assert [r.id for r in load_jsonl_records(out)[0]] == ["2"]


def test_cli_check_reads_a_build_directory(ten, tmp_path, capsys):
    from lm_eval_medsplit.build import build

    inp = tmp_path / "medqa.jsonl"
    write_jsonl(ten, inp)  # their benchmark field is medqa, a registry config
    res = build(inp, tmp_path / "b", progress=False)
    assert main(["adversarial", "check", str(res.out), "--json"]) == 0
    chk = json.loads(capsys.readouterr().out)
    assert chk["records"] == 10 and chk["traces"] == 30 and chk["ok"] == 30
    parquet = next(res.out.rglob("*.parquet"))
    assert main(["adversarial", "check", str(parquet)]) == 2  # not a source: a named error
    assert "canonical JSONL" in capsys.readouterr().err


# --------------------------------------------------------------------------- local model


def test_transformers_generator_accounts_for_rejections(tiny_model, medqa, tmp_path):
    from lm_eval_medsplit.trace_generation import TransformersGenerator

    gen = TransformersGenerator(str(tiny_model), batch_size=4, max_new_tokens=6, temperature=0.0)
    assert gen.source == f"model:{tiny_model}"
    prompt = gen.render(trace_generation_messages(medqa[0], "B"))
    assert prompt.startswith("<|system|>") and prompt.endswith("<|assistant|>\n")
    recs = copy.deepcopy(medqa[:3])
    out = tmp_path / "lm.jsonl"
    recs, st = generate_traces(recs, gen, n=2, max_attempts=2, out=out, progress=False)
    # a random model writes gibberish: whatever it wrote, every trace is accounted for
    assert st.requested == 6 and st.accepted + st.rejected == 6
    per_trace = [a for r in recs for a in r.meta[META_KEY]["attempts"]]
    assert st.attempts == sum(per_trace) and all(1 <= a <= 2 for a in per_trace)
    assert st.retries == st.attempts - 6
    assert sum(st.reasons.values()) == st.attempts - st.accepted
    assert st.generator["batches"] >= 2
    for r in recs:
        status = r.meta[META_KEY]["status"]
        for k, s in enumerate(status):
            ok, _ = check_trace(r, r.adversarial_traces[k], wrong_letter(r, k))
            assert ok == (s == "ok")
            assert (r.adversarial_traces[k] == "") == (s == "rejected")
    # resume: finished records are not generated again
    _, st2 = generate_traces(copy.deepcopy(medqa[:3]), gen, n=2, max_attempts=1, out=out,
                             progress=False)
    finished = sum(all(s == "ok" for s in r.meta[META_KEY]["status"]) for r in recs)
    assert st2.resumed == finished and st2.requested == st.rejected
    # with the offline fallback every slot is filled and the source says so
    recs3, st3 = generate_traces(copy.deepcopy(medqa[:2]), gen, n=1, max_attempts=1,
                                 on_reject="offline", progress=False)
    assert st3.fallback_offline == st3.rejected
    for r in recs3:
        assert r.adversarial_traces[0].strip()
        if r.meta[META_KEY]["status"] == ["offline"]:
            assert r.adversarial_source == f"{gen.source}+{OFFLINE_SOURCE}"
