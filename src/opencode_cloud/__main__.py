from opencode_cloud.cli.main import main

main()
