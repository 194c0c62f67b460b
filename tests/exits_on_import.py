import sys

sys.exit(3)  # a module that runs its command line when imported
