from jobfsm.cli import main

main()
