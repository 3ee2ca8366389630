"""vosweep: query the whole Virtual Observatory at once."""
