"""The traveller's app on Android: python-for-android starts ``main.py`` at
the root of the packaged source (see buildozer.spec). On a desktop, use
``taxfree-traveller`` (``make traveller``) instead."""
from traveller_app.main import main

if __name__ == "__main__":
    raise SystemExit(main())
