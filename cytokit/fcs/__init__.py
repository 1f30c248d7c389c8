"""Reading and writing FCS files (FCS 2.0, 3.0, 3.1 and 3.2).

cytokit owns its reader because the field's readers fail real files (see
``docs/design.md``): 24-bit and mixed-width integers, HEADER/TEXT offset
disagreements, DATA end offsets one byte past the end, blank HEADER offsets,
``$NEXTDATA`` chains and bits above ``$PnR`` all occur in instrument files.
DATA offsets that point into the HEADER or TEXT are never used (the other
offsets are, when they fit; else the file is an ``FCSError``), a supplemental
TEXT over the HEADER, TEXT or DATA is ignored with a warning, and CellQuest's
empty values (a doubled delimiter right after a keyword and before a
keyword-like token, ``/$P3S//$P4S/``) are read as empty, not as an escaped
delimiter. A ``$PnR`` that is not a finite number leaves its channel unmasked,
with an :class:`FCSWarning`, like one that is no number at all.

Values are returned as FCS 3.1 *scale values*:

- integer data are masked to the bits ``$PnR`` needs;
- log-amplified integer channels (``$PnE`` = f1,f2 with f1 > 0) become
  ``10 ** (f1 * x / $PnR) * f2`` (f2 = 0 read as 1); ``$PnG`` is not used;
- other channels are divided by ``$PnG``; float data with a log flag are kept
  as stored (FCS 3.1 says float data use ``$PnE`` 0,0);
- the time channel is multiplied by ``$TIMESTEP``.
"""

from __future__ import annotations

from ._read import read_fcs
from ._text import FCSDataWarning, FCSWarning, list_datasets, read_keywords  # noqa: F401 (public)
from ._write import write_fcs

__all__ = ["read_fcs", "read_keywords", "list_datasets", "write_fcs"]
