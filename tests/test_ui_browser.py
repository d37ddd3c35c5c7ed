"""The web viewer as a person sees it: a real headless Chromium against a real server.

One browser and one server for the module (a store on a SQLite file, served
read-only as `eventstore ui` serves it); each test checks what is rendered
(DOM text, where the bars are, what is marked) rather than HTML strings.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import pytest

import eventstore
from eventstore import events as ev
from eventstore.store import HistoryStore
from eventstore.ui import ViewerServer, create_app
from eventstore.ui.server import bind_socket

from .ui_browser import chromium, require_chromium, require_playwright
from .ui_histories import HOSTILE, HOSTILE_INSTANCE, LEGACY_INSTANCE, T, seed

require_playwright()


@pytest.fixture(scope="module")
def store_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    require_chromium()
    return tmp_path_factory.mktemp("ui") / "store.db"


@pytest.fixture(scope="module")
def writer(store_path: Path) -> Iterator[HistoryStore]:
    with eventstore.open(str(store_path)) as store:
        seed(store)
        yield store


@pytest.fixture(scope="module")
def base_url(writer: HistoryStore, store_path: Path) -> Iterator[str]:
    """The store served read-only, as `eventstore ui` serves it, beside its writer."""
    with (
        eventstore.open(str(store_path), readonly=True) as store,
        ViewerServer(create_app(store), bind_socket("127.0.0.1", 0)) as server,
    ):
        yield server.url.rstrip("/")


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    with chromium() as context:
        yield context


@pytest.fixture
def page(browser: Any) -> Iterator[Any]:
    page = browser.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    yield page
    page.close()
    assert errors == [], f"script errors on the page: {errors}"


def execution_url(base: str, instance: str, execution: int | None = None) -> str:
    query = {"instance": instance} | ({} if execution is None else {"execution": execution})
    return f"{base}/execution?{urlencode(query)}"


def open_execution(page: Any, base: str, instance: str, execution: int | None = None) -> None:
    page.goto(execution_url(base, instance, execution))
    page.wait_for_selector("#events")


def listed_instances(page: Any) -> list[str]:
    page.wait_for_selector("#executions")
    return [str(t) for t in page.locator("#executions .instance-link").all_text_contents()]


def test_the_list_links_filters_searches_and_pages(page: Any, base_url: str) -> None:
    page.goto(f"{base_url}/")
    everything = listed_instances(page)
    assert {"order-1", "chain-1", "waiting-1", HOSTILE_INSTANCE, LEGACY_INSTANCE} <= set(everything)
    page.select_option("select[name=status]", "failed")
    page.click("#filters button[type=submit]")
    page.wait_for_url("**/?status=failed**")
    failed = listed_instances(page)
    assert HOSTILE_INSTANCE in failed and "order-1" not in failed
    page.goto(f"{base_url}/?q=order")
    assert sorted(listed_instances(page)) == ["order-1", "order-1-ship"]
    # time range (started since / until), every execution of a chain, the catalog's figures
    page.goto(f"{base_url}/?since={T + 500}")
    assert listed_instances(page) == ["order-1-ship"]
    page.goto(f"{base_url}/?until={T + 1}&q=order")
    assert listed_instances(page) == ["order-1"]
    cells = page.locator("#executions tbody tr >> nth=0").locator("td").all_text_contents()
    assert cells[4:8] == ["2026-11-18 11:06:40.000", "1.000 s", "10", cells[7]]
    assert cells[7].endswith(" KiB") or cells[7].endswith(" B")
    page.goto(f"{base_url}/?q=chain")
    assert page.locator("#executions td.num").first.inner_text() == "2"
    page.goto(f"{base_url}/?q=chain&all=1")
    assert listed_instances(page) == ["chain-1", "chain-1"]
    page.goto(f"{base_url}/?q={LEGACY_INSTANCE}")
    assert listed_instances(page) == [LEGACY_INSTANCE]
    assert page.locator("#executions tbody .no-time").count() == 1
    page.goto(f"{base_url}/?size=3")
    first = listed_instances(page)
    assert len(first) == 3
    page.click("text=next →")
    page.wait_for_url("**page=2**")
    second = listed_instances(page)
    assert second and not set(second) & set(first)
    page.click("#executions .instance-link >> nth=0")
    page.wait_for_selector("#events")
    assert page.text_content("#instance") == second[0]


def _box(page: Any, selector: str) -> dict[str, float]:
    box = page.locator(selector).bounding_box()
    assert box is not None, selector
    return dict(box)


def test_bars_sit_where_their_events_put_them(page: Any, base_url: str) -> None:
    open_execution(page, base_url, "order-1")
    track = _box(page, ".bar[data-event='2'] >> xpath=..")

    def place(event_id: int) -> tuple[float, float]:
        bar = _box(page, f".bar[data-event='{event_id}']")
        return (bar["x"] - track["x"]) / track["width"], bar["width"] / track["width"]

    # order-1 spans 1,000 ms (tests/ui_histories.py): Reserve 200-700 ms
    assert place(2) == pytest.approx((0.2, 0.5), abs=0.005)
    assert place(3) == pytest.approx((0.2, 0.4), abs=0.005)  # the timer, 200-600 ms
    assert place(6) == pytest.approx((0.7, 0.1), abs=0.005)  # Charge, failed
    # the timer waited 300 ms for its time and fired 100 ms late
    timer = _box(page, ".bar[data-event='3']")
    wait, late = (
        _box(page, ".bar[data-event='3'] .segment-wait"),
        _box(page, ".bar[data-event='3'] .segment-late"),
    )
    assert wait["width"] / timer["width"] == pytest.approx(0.75, abs=0.01)
    assert late["x"] == pytest.approx(wait["x"] + wait["width"], abs=1)
    # Ship waited 50 ms for its child to start (the child's own history), ran 100 ms
    ship = _box(page, ".bar[data-event='8']")
    queued = _box(page, ".bar[data-event='8'] .segment-wait")
    assert queued["width"] / ship["width"] == pytest.approx(1 / 3, abs=0.01)
    assert page.locator(".bar[data-event='8'] .segment-run").count() == 1
    assert page.locator(".axis").inner_text().split("\n")[1].strip() == "1.000 s"


def test_failures_stand_out_and_completions_name_what_they_answer(page: Any, base_url: str) -> None:
    open_execution(page, base_url, "order-1")
    assert "outcome-failed" in str(page.get_attribute(".bar[data-event='6']", "class"))
    failed = page.locator("#event-7")
    assert "failed" in str(failed.get_attribute("class"))
    assert "ActivityFailed: card declined" in failed.inner_text()
    assert failed.evaluate("e => getComputedStyle(e).borderLeftColor") == "rgb(214, 69, 69)"
    # pairs by source_event_id, both ways, and the links go there
    assert page.text_content("#event-5 .source-link") == "for #2"
    assert page.text_content("#event-2 .answer-link") == "answered by #5"
    page.click("#event-5 .source-link")
    assert page.evaluate("location.hash") == "#event-2"
    # phase-2 metadata where the events carry it
    chips = {n: page.locator(f"#event-{n} .chip").all_text_contents() for n in (1, 2, 5)}
    assert {"worker worker-a", "trace trace-7f3a"} <= set(chips[1])
    assert {"retry 2", "worker worker-a"} <= set(chips[2])
    assert "worker worker-b" in chips[5]
    assert page.text_content("#status") == "completed"
    figures = page.text_content("#figures")
    assert figures.startswith("· 10 events · ") and figures.endswith(" KiB · took 1.000 s")


def test_events_without_time_are_marked_and_never_put_at_1970(page: Any, base_url: str) -> None:
    open_execution(page, base_url, LEGACY_INSTANCE)
    events = page.locator("#events li.event")
    assert events.count() >= 4
    ids = [int(t.lstrip("#")) for t in page.locator("#events .event-id").all_text_contents()]
    assert ids == sorted(ids)
    assert page.locator("#events li.event .no-time").count() == events.count()
    assert page.locator("#events .time").count() == 0
    assert "have no timestamp" in page.text_content("#untimed-note")
    assert page.locator("#timeline .bar").count() == 0
    assert page.locator("#timeline .no-time").count() >= 1
    assert "1970" not in page.inner_text("body")


def test_hostile_payloads_render_as_text(page: Any, base_url: str) -> None:
    open_execution(page, base_url, HOSTILE_INSTANCE)
    assert page.text_content("#instance") == HOSTILE_INSTANCE
    text = page.inner_text("#main")
    assert text.count(HOSTILE) >= 4  # name, activity name and title, failure messages
    assert page.evaluate("window.__pwned") is None
    assert page.locator("#main script, #main img, #main b").count() == 0
    assert "9223372036854776000 ms since the epoch" in page.inner_text("#event-7")
    # and in the list (the instance id holds markup too)
    page.goto(f"{base_url}/?q=hostile")
    assert listed_instances(page) == [HOSTILE_INSTANCE]
    assert page.locator("#executions b").count() == 0


def test_chains_and_parent_child_links_lead_to_each_other(page: Any, base_url: str) -> None:
    open_execution(page, base_url, "chain-1", 1)
    assert page.text_content("#status") == "continued as new"
    page.click(".link-next-execution")
    page.wait_for_selector("#previous-execution")
    assert "execution=2" in page.url and page.text_content("#status") == "completed"
    page.click("#previous-execution")
    page.wait_for_selector("#next-execution")
    assert "execution=1" in page.url
    open_execution(page, base_url, "order-1")
    page.click("#event-8 .link-child")
    page.wait_for_selector(".link-parent")
    assert page.text_content("#instance") == "order-1-ship"
    page.click(".link-parent")
    page.wait_for_selector("#event-8")
    assert page.text_content("#instance") == "order-1"


def test_large_payloads_start_collapsed(page: Any, base_url: str) -> None:
    open_execution(page, base_url, "large-1")
    collapsed = page.locator("#event-1 details.field")
    assert collapsed.count() == 1 and collapsed.get_attribute("open") is None
    assert not page.locator("#event-1 details.field pre").is_visible()
    page.click("#event-1 details.field summary")
    assert page.locator("#event-1 details.field pre").is_visible()
    assert '"key-059": "value 59"' in page.inner_text("#event-1 details.field pre")


def test_a_long_execution_shows_its_first_events_and_more_on_request(
    page: Any, base_url: str
) -> None:
    open_execution(page, base_url, "long-1")
    assert page.locator("#events li.event").count() == 500
    more = page.locator("#events button.more")
    assert more.inner_text() == "show 22 more events (22 not shown)"
    more.click()
    assert page.locator("#events li.event").count() == 522 and not more.is_visible()
    page.goto(execution_url(base_url, "long-1") + "#event-521")
    page.wait_for_selector("#event-521")
    assert page.locator("#events li.event").count() == 522
    assert "all done" in page.inner_text("#event-522")


def test_a_running_execution_updates_while_watched(
    page: Any, base_url: str, writer: HistoryStore
) -> None:
    open_execution(page, base_url, "waiting-1")
    assert page.text_content("#status") == "running"
    assert page.locator("#live").is_visible()
    assert "outcome-open" in str(page.get_attribute(".bar[data-event='2']", "class"))
    done = ev.ActivityCompleted(
        event_id=3, source_event_id=2, timestamp_ms=T + 400, result='"slow answer"'
    )
    writer.append("waiting-1", 1, [done], expected_last_event_id=2)
    page.wait_for_selector("#event-3", timeout=10_000)
    assert '"slow answer"' in page.inner_text("#event-3")
    assert "outcome-completed" in str(page.get_attribute(".bar[data-event='2']", "class"))
    finished = ev.OrchestrationCompleted(event_id=4, timestamp_ms=T + 500, output='"ok"')
    writer.append("waiting-1", 1, [finished], expected_last_event_id=3)
    page.wait_for_selector("#event-4", timeout=10_000)
    assert page.text_content("#status") == "completed"
    assert page.locator("#live").count() == 0


def test_an_unknown_execution_says_so(page: Any, base_url: str) -> None:
    page.goto(execution_url(base_url, "no-such-instance"))
    page.wait_for_selector("#error")
    assert "no such execution of instance 'no-such-instance'" in page.text_content("#error")
