"""The audit log."""

from __future__ import annotations

from ..client import Client
from ._common import CliError, client_options, command, group, print_json

audit = group("audit", "The audit log.", example="fnhost audit verify")


@command(audit, "verify", example="fnhost audit verify")
@client_options
def audit_verify(api: Client, as_json: bool) -> int:
    """Verify the audit log's hash chain (exit 1 if it was tampered with)."""
    result = api.verify_audit()
    if as_json:
        print_json(result)
        return 0 if result["ok"] else 1
    if result["ok"]:
        print(f"audit log intact: {result['checked']} entries, hash chain verified")
        return 0
    raise CliError(f"audit log tampered with: {result['reason']} ({result['checked']} entries verified before it)")


COMMANDS = [audit]
