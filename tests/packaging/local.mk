# Packaging tests: manifest schema, exported symbols, install layout.
