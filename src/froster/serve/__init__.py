"""`froster serve`: a local web app and HTTP API over one model (docs/serve.md).

Needs the serve extra (``pip install 'froster[serve]'``: FastAPI, uvicorn,
python-multipart). `open_app(recognizer, ...)` builds the app for tests and programs;
the command line runs it under uvicorn.
"""
