"""Independent Python oracles of the device side, for tests only.

Each module re-implements one part of the C runtime from its specification (docs/protocol.md,
the papers and RFCs cited in each module) so the tests can compare the C against something
that was not derived from it: ``cobs``, ``protocol`` (frames), ``messages``, ``receiver``
(the reliability layer's receiver), ``delta`` (top-k, int8 quantization, error feedback),
``payload`` (the delta payload codec) and ``train`` (the float head's training step).
Production code never imports them; it calls the C through fltiny.native.
"""
