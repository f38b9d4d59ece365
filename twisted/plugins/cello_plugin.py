"""twistd plugin: ``twistd cello --app APP``; lazy, so listing plugins imports no reactor."""

from twisted.application.service import ServiceMaker

cello = ServiceMaker(
    "cello",
    "cello_twisted.server.tap",
    "Run a cello_twisted application (--app file.py or package.module[:attr]).",
    "cello",
)
