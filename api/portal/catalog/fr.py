"""Français: the traveller status page (the kiosk's languages)."""

MESSAGES = {
    'Skip to main content':
        'Aller au contenu',
    'Language':
        'Langue',
    'Tax-free form status':
        'Statut de votre bordereau de détaxe',
    'Export deadline':
        "Date limite d'exportation",
    'Form number':
        'Numéro du bordereau',
    'Next step':
        'Prochaine étape',
    'Check another form':
        'Vérifier un autre bordereau',
    'Check your tax-free form':
        'Vérifier votre bordereau de détaxe',
    'Enter the form number printed next to the QR code and your last name as in your passport.':
        "Saisissez le numéro imprimé à côté du code QR et votre nom de famille tel qu'il figure sur votre passeport.",
    '10 letters and digits, for example NL 7K3Q W9XD':
        '10 lettres et chiffres, par exemple NL 7K3Q W9XD',
    'Last name':
        'Nom de famille',
    'Show status':
        'Afficher le statut',
    'Validate your form at your last EU airport or port, before you check in your luggage.':
        "Faites valider votre bordereau dans votre dernier aéroport ou port de l'UE, avant d'enregistrer vos bagages.",
    'Not validated yet':
        'Pas encore validé',
    'Customs check needed':
        'Contrôle douanier nécessaire',
    'Go to the customs desk with your goods, your passport and this form, before you check in your luggage.':
        "Présentez-vous au bureau de douane avec vos achats, votre passeport et ce bordereau, avant d'enregistrer vos bagages.",
    'Export validated':
        'Exportation validée',
    'Export validated for part of your goods':
        'Exportation validée pour une partie de vos achats',
    'Your refund will be paid by {payer}.':
        'Votre remboursement sera versé par {payer}.',
    'Refund paid':
        'Remboursement effectué',
    'Nothing more to do. Have a good trip!':
        "Vous n'avez plus rien à faire. Bon voyage !",
    'Export refused by customs':
        'Exportation refusée par la douane',
    'This form cannot be validated any more. Ask the shop if you have questions.':
        'Ce bordereau ne peut plus être validé. Adressez-vous au magasin si vous avez des questions.',
    'Form cancelled by the shop':
        'Bordereau annulé par le magasin',
    'This form cannot be used. Ask the shop if you have questions.':
        'Ce bordereau ne peut pas être utilisé. Adressez-vous au magasin si vous avez des questions.',
    'Export deadline passed':
        "Date limite d'exportation dépassée",
    'This form can no longer be validated.':
        'Ce bordereau ne peut plus être validé.',
    'Fill this in.':
        'Veuillez remplir ce champ.',
    'This is not a valid form number. Check it on your form.':
        "Ce numéro de bordereau n'est pas valide. Vérifiez-le sur votre bordereau.",
    'Too many attempts. Wait a minute and try again.':
        'Trop de tentatives. Attendez une minute et réessayez.',
    'We found no form with this number and last name.':
        'Aucun bordereau ne correspond à ce numéro et à ce nom de famille.',
    'This page was open for a long time. Please send it again.':
        'Cette page est restée ouverte longtemps. Veuillez la renvoyer.',
    'Go to the start page':
        "Retour à l'accueil",
}
