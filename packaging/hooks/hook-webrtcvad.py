"""PyInstaller hook for ``webrtcvad`` as installed by the ``webrtcvad-wheels`` distribution.

The contributed hook copies the metadata of a distribution named ``webrtcvad``, which does
not exist here; ``webrtcvad`` reads its version from ``webrtcvad-wheels``.
"""

from PyInstaller.utils.hooks import copy_metadata

datas = copy_metadata("webrtcvad-wheels")
hiddenimports = ["_webrtcvad"]
