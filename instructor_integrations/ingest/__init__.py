"""Ingestion: reading files, cutting them into chunks, writing them into stores.

* :mod:`.loaders` reads documents (PDF, DOCX, HTML, Markdown, text) into sections;
* :mod:`.chunking` cuts text into chunks that fit the model with their instruction;
* :mod:`.sources` turns files and folders into records with stable ids;
* :mod:`.vectorstores` writes records into stores through one batch writer.

Each is also importable under its public name at the package's top (``instructor_integrations.sources``
and so on), which is the same module object.
"""
