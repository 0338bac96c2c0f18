"""`python -m export`: the export command line of `keras_dpnp.export`, from a checkout."""

from keras_dpnp.export import run

if __name__ == "__main__":
    run()
