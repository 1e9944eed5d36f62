"""Reference FHIR ingest server for the companion app's uploads (Starlette + uvicorn).

    PYTHONPATH=tools python -m ingest_server --port 8088 --db obs.db --token app1=SECRET \\
        [--certfile cert.pem --keyfile key.pem]

POST /Observation (conditional create with If-None-Exist), GET /Observation
(a searchset Bundle), GET /Observation/<id>, GET / (an HTML listing), GET
/health.  Per-device bearer tokens; SQLite persistence; incoming resources
validated with fhir.resources (R4B models).

Why Starlette on uvicorn: a small, real ASGI framework and server (both pure
Python, h11 for HTTP/1.1), TLS built into uvicorn, nothing the reference
server does not use.  FastAPI would add pydantic request models we do not
need (the body is a FHIR resource validated by fhir.resources).
"""
