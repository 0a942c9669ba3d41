"""Event mode: many participants test pairwise over days, each seeing only its own evidence (docs/events.md).

An event is a folder:

    DIR/event.toml          the protocols and cases of the event (config.EVENT_TEMPLATE documents it)
    DIR/participants.toml   who takes part: organisation, contact, built-in vendors and/or devices
    DIR/inventory.toml      generated from participants.toml: their devices, in the --devices format
    DIR/event.sqlite        the state (store.py): participants, token hashes, the plan, every try, sign-offs
    DIR/runs/<run id>/     one `overlay-interop run` of a slot: its reports folder (matrix.json, pairs/...)

The package knows no protocol: a cell is (protocol, case, a, b) as the run's matrix.json names it.
"""
