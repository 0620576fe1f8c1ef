"""The SSH connection layer on top of the system's OpenSSH client.

- ``settings``: where the user's ssh config, known_hosts and occ's private runtime folder are;
- ``config`` and ``argv``: pure builders of the generated ssh config and of every ssh argv;
- ``errors``: ssh's failures classified into errors with a message and a hint;
- ``connection``: ``HostConnection``, the thin part that runs processes (master, commands,
  forwarded sockets), with retries.
"""
