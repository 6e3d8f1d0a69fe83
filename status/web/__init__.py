"""HTTP: the public read side, the staff API and the app that holds them."""
