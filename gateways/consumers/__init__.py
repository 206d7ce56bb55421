"""The device sockets: `client`, `gateway` and `relay` consumers on a shared `DeviceConsumer`.

Import the consumers from their modules (they need Django set up); `firezone.routing` wires them
to `/client/websocket`, `/gateway/websocket` and `/relay/websocket`.
"""
