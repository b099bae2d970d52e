from gitops_action.cli import leave, main

leave(main())
