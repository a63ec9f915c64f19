"""The public name of :mod:`instructor_integrations.ingest.chunking` (the code lives there, with all of ingestion).

``import instructor_integrations.chunking`` gives that very module object, so names, patches and
``isinstance`` checks are shared.
"""

from __future__ import annotations

import sys

from .ingest import chunking as _module

sys.modules[__name__] = _module
