"""The pjsua2 SIP adapter: an endpoint on its own thread, accounts, calls as caller ports.

``app`` never imports this package. Import the submodules; :mod:`sip.config` and
:mod:`sip.events` and :mod:`sip.quality` work without pjsua2 installed.
"""
