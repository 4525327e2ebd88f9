from yotposync.cli import main

main()
