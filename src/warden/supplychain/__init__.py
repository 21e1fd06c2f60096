"""Supply chain (OWASP ML06, ATLAS AML.T0010/T0011): artifact scanner, signing, ML-BOM, deps audit.

- :mod:`warden.supplychain.scanner` — scan model files by content without executing them.
- :mod:`warden.supplychain.signing` — OpenSSF model-signing compatible manifests (DSSE).
- :mod:`warden.supplychain.sbom` — CycloneDX 1.6 ML-BOM.
- :mod:`warden.supplychain.deps` — dependency audit against a local OSV database.

Importing this package loads nothing heavy.
"""
