"""One module per provider wire format; each registers its routes with `stub_model.route`."""
