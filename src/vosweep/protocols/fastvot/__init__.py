"""A fast VOTable decoder for the serialisations and types real services send.

Anything it does not support makes it return None, and the caller falls back to astropy
for that document (see `vosweep.protocols.votable`).
"""
