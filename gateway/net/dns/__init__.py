"""DNS parameter constants (types, classes, op codes, response codes), named as in
mitmproxy's ``net.dns`` and backed by dnspython's registries for their names."""
