"""The traveller's own phone app (Kivy): passport typed or read from the
camera, the forms registered against it, the trip, and validating the
export inside the exit point's zone, in the traveller's language.

``taxfree-traveller`` (``traveller_app.main:main``) starts it. Kivy is
imported by ``traveller_app.app`` and the screens only: the wallet, the
presence evidence, the validation gate, the trip check and the wording are
plain Python that tests call directly.
"""
