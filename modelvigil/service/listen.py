"""Why a service could not listen where it was asked to: kept apart from the launcher, so that a
command reporting it need not load the service, its model and their libraries."""


class CannotListen(OSError):
    """The address is taken, not this machine's, or not allowed; the message says which."""
