#!/usr/bin/python3
"""mint-tokens: keys and one token per connection for bench/run's conns-*-token-* cases.

usage: bench/mint-tokens.py DIR N
Writes into DIR: hs256.secret, rs256.pub (RSA 2048), es256.pub (EC P-256), and hs256.txt, rs256.txt,
es256.txt with N tokens each, one per line; line i has sub "c<i>", the name loadgen gives connection i
(loadgen --tokens), exp one day ahead, and no rooms claim, like `switchboard token --user c<i>`.
Uses Debian's python3-jwt and python3-cryptography. Does nothing if DIR already holds N tokens of each."""
import os
import secrets
import sys
import time

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa


def write(path, data):
    with open(path, "wb") as f:
        f.write(data)


def pem_public(key):
    return key.public_key().public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)


def main():
    if len(sys.argv) != 3:
        sys.exit("usage: mint-tokens.py DIR N")
    out, n = sys.argv[1], int(sys.argv[2])
    os.makedirs(out, exist_ok=True)
    done = os.path.join(out, "done-%d" % n)
    if os.path.exists(done):
        return
    secret = secrets.token_hex(32).encode()
    rsa_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    ec_key = ec.generate_private_key(ec.SECP256R1())
    write(os.path.join(out, "hs256.secret"), secret)
    write(os.path.join(out, "rs256.pub"), pem_public(rsa_key))
    write(os.path.join(out, "es256.pub"), pem_public(ec_key))
    now = int(time.time())
    for name, alg, key in (("hs256", "HS256", secret), ("rs256", "RS256", rsa_key), ("es256", "ES256", ec_key)):
        lines = [jwt.encode({"sub": "c%d" % i, "iat": now, "exp": now + 86400}, key, algorithm=alg) for i in range(n)]
        write(os.path.join(out, name + ".txt"), ("\n".join(lines) + "\n").encode())
    write(done, b"")


if __name__ == "__main__":
    main()
