import sys

from gtdsl.cli.main import main

sys.exit(main())
