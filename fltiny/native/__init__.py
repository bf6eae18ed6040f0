"""The one binding of the firmware's C runtime (ctypes; why: fltiny/native/lib.py).

``lib`` loads the runtime library and checks its struct mirrors (``abi``); ``proto`` (frames,
receiver, outbox), ``messages`` (message values, C codecs), ``delta`` (compress, apply,
payload codec) and ``status`` expose it; ``build`` and ``cross`` compile the runtime for the
host and the targets. Nothing else in fltiny produces or parses a byte the device does.
"""
