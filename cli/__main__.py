from mtl.cli import main

main()
