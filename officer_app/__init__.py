"""The customs officer's handheld app (Kivy): the desk's queue of travellers
sent for a physical check, finding forms by QR code, passport or id, the
check itself and the decision, which waits on the handheld while the
network is down. Run it with ``taxfree-officer`` or ``make officer``."""
