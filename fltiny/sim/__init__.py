"""Fleet simulation on the firmware's own C runtime (``fltiny simulate``)."""
