"""The Phoenix socket/channel protocol spoken by clients, gateways and relays (protocol.md §1).

`framing` holds the V1/V2 serializers, `rejection` how an upgrade is refused with an HTTP status
and body, `consumer` the `PhoenixConsumer` base class of the three device sockets. Import the
consumer names from `firezone.phoenix.consumer` (it needs Django set up).
"""
