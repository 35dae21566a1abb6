"""`python -m jaxnet TOOL ...`: the one entry point of jaxnet's tools (jaxnet.tools)."""
from jaxnet.tools import main

if __name__ == "__main__":
    raise SystemExit(main())
