"""The capabilities a number is imported with: SignalWire's names, and the labels people read.

Defined here once, in the API's order (which is also the order stored and sent). Django-free,
so the SignalWire client and the number reader use it too. The simulator keeps its own list:
it stands in for SignalWire, so it must not follow the portal if the portal drifts.
"""

CAPABILITY_LABELS: dict[str, str] = {"sms": "SMS", "voice": "Voice", "fax": "Fax", "mms": "MMS"}
CAPABILITIES: tuple[str, ...] = tuple(CAPABILITY_LABELS)
