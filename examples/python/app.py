"""A Flask origin behind kontur-gate: every route knows who the user is.

    apt-get install python3-flask python3-jwt python3-cryptography   # Debian 12
    (or: pip install -r requirements.txt)
    GATE_URL=https://site.example ORIGIN_URL=https://origin.example PORT=5000 python3 app.py
"""

import os

from flask import Flask, g, jsonify, request

from gate_identity import GateVerifier, NotVerified, decode_name

app = Flask(__name__)
verifier = GateVerifier(os.environ["GATE_URL"], os.environ["ORIGIN_URL"])


@app.before_request
def require_gate_identity():
    # The request target exactly as received (percent-encoding intact), as the gate signed it.
    target = request.environ.get("RAW_URI") or request.environ.get("REQUEST_URI") or request.full_path.rstrip("?")
    try:
        g.user = verifier.verify(request.method, target, request.headers)
    except NotVerified as error:
        return jsonify(error="unauthenticated", reason=str(error)), 401


@app.get("/whoami")
def whoami():
    return jsonify(
        **g.user,  # verified: sub, email, name from the assertion
        # The plain headers, for comparison: trustworthy only when nothing but the gate reaches this app.
        header_user=request.headers.get("X-Forwarded-User"),
        header_name=decode_name(request.headers.get("X-Forwarded-Name")),
    )


if __name__ == "__main__":
    app.run(host="127.0.0.1", port=int(os.environ.get("PORT", "5000")))
