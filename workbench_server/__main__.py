from workbench_server.app import main

main()
