"""`cml.utils_v1` in a `modelvigil session`: `_emulate_cdsw()` hands out modelvigil's facade."""

from typing import Any


def _emulate_cdsw() -> Any:
    import modelvigil.cdsw

    return modelvigil.cdsw
