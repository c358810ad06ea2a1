from medforge_cli.app import main

main()
