"""The eBPF sensor: a generated bpftrace program (``program``), its line protocol
(``wire``), the decoder into canonical events (``decoder``, ``tables``), the host checks
(``kernel``) and the live source that runs it all (``runner``: :class:`EbpfSource`)."""
