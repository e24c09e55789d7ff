"""Dates: parses dates with python-dateutil, a dependency from requirements.txt.

Invoke payload: a date in almost any format ("2026-12-01", "1 Dec 2026 15:04", "next tuesday" is
not one). Output: {"iso": "...", "weekday": "Tuesday"}. An unparseable date is the function's
error, with the traceback in the invocation's logs.
"""

from dateutil import parser

from fnhost_sdk import App, Context, Event, Invoke

app = App()


@app.event
def on_event(event: Event, ctx: Context) -> dict[str, str]:
    if not isinstance(event, Invoke):
        raise ValueError(f"dates handles direct invokes only, not {type(event).__name__}")
    when = parser.parse(event.text())
    return {"iso": when.isoformat(), "weekday": when.strftime("%A")}


WitWorld = app.world()
